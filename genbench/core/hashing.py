"""Content hashes: of a tensor, of a network's architecture and weights, of a file. They key
caches and records (a data split's hash, an extractor's weights hash), so their output must never
change: a shipped classifier's recorded training-data hash is checked against `tensor_hash`.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import torch


def tensor_hash(x: torch.Tensor) -> str:
    """sha256 of a tensor's shape and bytes (integer levels in [0, 256) hashed as uint8)."""
    x = x.detach().cpu().contiguous()
    if not x.is_floating_point() and x.numel() and x.min() >= 0 and x.max() < 256:
        x = x.to(torch.uint8)
    h = hashlib.sha256(f"{tuple(x.shape)}".encode())
    h.update(x.numpy().tobytes())
    return h.hexdigest()


def state_hash(arch: dict, state_dict: dict[str, torch.Tensor]) -> str:
    """sha256 of an architecture dict and the weights' bytes, independent of the file format."""
    h = hashlib.sha256(json.dumps(arch, sort_keys=True).encode())
    for k in sorted(state_dict):
        h.update(k.encode())
        h.update(state_dict[k].detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


_FILE_HASHES: dict[tuple[str, int, int], str] = {}


def file_hash(path: str | os.PathLike) -> str:
    """sha256 of a file's bytes, memoised by (path, size, mtime)."""
    st = os.stat(path)
    key = (str(Path(path).resolve()), st.st_size, st.st_mtime_ns)
    if key not in _FILE_HASHES:
        h = hashlib.sha256()
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        _FILE_HASHES[key] = h.hexdigest()
    return _FILE_HASHES[key]
