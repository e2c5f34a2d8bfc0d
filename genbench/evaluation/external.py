"""Samples made elsewhere (another code base, a paper's released samples), read into genbench's
data layout so that they are scored exactly as the trained families' samples are.

Accepted: a .npz (the array "samples", else its only or first array, e.g. guided-diffusion's
"arr_0") or .npy holding images as (N, H, W, C) or (N, C, H, W) integers, or points as (N, D)
floats; or a folder of PNG/JPEG images (sorted by name). Images must have the data set's size
and channels (no resizing: a resize would change what is measured). 8-bit values (0..255) are
mapped to the data set's K levels by rounding v (K - 1) / 255 when K < 256.
"""

from __future__ import annotations

import hashlib
import zipfile
import zlib
from pathlib import Path

import numpy as np
import torch

from genbench.core.spec import DataSpec

EXTERNAL_FAMILY = "external"
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


# What numpy raises on a file it cannot read (random bytes: its pickle message; a truncated
# .npz: zipfile's; a damaged member: zlib's on reading it).
UNREADABLE = (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error)


def _array(path: Path) -> np.ndarray:
    try:
        if path.suffix == ".npy":
            return np.load(path, allow_pickle=False)
        with np.load(path, allow_pickle=False) as z:
            names = list(z.keys())
            if names:
                return z["samples"] if "samples" in names else z[names[0]]
    except UNREADABLE as e:
        raise ValueError(
            f"samples={str(path)!r} is not a readable {path.suffix} file (corrupt, truncated or "
            "not written by numpy)"
        ) from e
    raise ValueError(f"samples={str(path)!r} holds no arrays")


def _folder(path: Path, spec: DataSpec) -> np.ndarray:
    from PIL import Image

    files = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise ValueError(f"samples={str(path)!r} holds no {'/'.join(IMAGE_SUFFIXES)} images")
    mode = "L" if spec.shape[0] == 1 else "RGB"
    return np.stack([np.asarray(Image.open(f).convert(mode)) for f in files])


def load_samples(path: str | Path, spec: DataSpec) -> torch.Tensor:
    """Samples from `path` in the layout of `spec`: long (N, C, H, W) in [0, K) for images,
    float (N, D) for points. One-line ValueError naming what does not fit."""
    path = Path(path).expanduser()
    if not path.exists():
        raise FileNotFoundError(f"samples={str(path)!r} does not exist")
    if path.is_dir():
        x = _folder(path, spec)
    elif path.suffix in (".npz", ".npy"):
        x = _array(path)
    else:
        raise ValueError(f"samples={str(path)!r}: valid: a folder of images, a .npz or a .npy")
    if not spec.is_image:
        if x.ndim != 2 or x.shape[1] != spec.num_dims:
            raise ValueError(
                f"samples of shape {x.shape}; {spec.name} points are (N, {spec.num_dims})"
            )
        return torch.from_numpy(x.astype(np.float32))
    c, h, w = spec.shape
    if x.ndim == 3 and c == 1:
        x = x[:, None]
    if x.ndim == 4 and x.shape[1:] != (c, h, w) and x.shape[-1] == c and x.shape[1:3] == (h, w):
        x = x.transpose(0, 3, 1, 2)  # NHWC -> NCHW
    if x.ndim != 4 or x.shape[1:] != (c, h, w):
        raise ValueError(f"samples of shape {x.shape}; {spec.name} images are (N, {c}, {h}, {w})")
    if np.issubdtype(x.dtype, np.floating):
        raise ValueError(
            f"samples are {x.dtype}; images must be integer levels (e.g. uint8 0..255)"
        )
    x = x.astype(np.int64)
    k = spec.num_levels
    if x.min() < 0 or x.max() > 255:
        raise ValueError(f"sample values in [{x.min()}, {x.max()}]; valid: 0..{k - 1} or 0..255")
    if x.max() >= k:  # 8-bit values for a data set with fewer levels
        x = np.rint(x * (k - 1) / 255).astype(np.int64)
    return torch.from_numpy(x)


def samples_hash(path: str | Path) -> str:
    """sha256 of a samples file, or of a folder's image files in name order."""
    path = Path(path).expanduser()
    h = hashlib.sha256()
    files = sorted(path.iterdir()) if path.is_dir() else [path]
    for f in files:
        if f.is_file():
            h.update(f.name.encode())
            h.update(f.read_bytes())
    return h.hexdigest()
