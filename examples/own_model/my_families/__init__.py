"""A user's own families for genbench, kept outside genbench (docs/own_model.md)."""
