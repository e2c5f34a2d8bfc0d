"""The bottom layer: the data spec, the results record and its schema, atomic writes, checkpoints,
content hashes.

Nothing here imports another genbench layer (import-linter checks it: `make lint`).
"""
