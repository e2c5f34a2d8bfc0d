"""Samples made elsewhere (another code base, a paper's released samples), read into genbench's
data layout so that they are scored exactly as the trained families' samples are.

Accepted: a .npy or .npz (its only array, or the one named by `key`: guided-diffusion's
"arr_0" beside its labels "arr_1") holding images as (N, H, W, C) or (N, C, H, W) integers, or
points as (N, D) floats; or a folder of PNG/JPEG images (sorted by name, read as 8-bit). Images
must have the data set's size and channels (no resizing: a resize would change what is
measured).

How many levels the file's integers use is never guessed: a dark 8-bit image (values <= 16)
and a 17-level digit look alike. `levels` says it (levels=256 for 0..255); left out, it is the
data set's own only where that is 256 (8-bit data, the range image files hold), else an error
names the choices. Integers of L levels map to the data set's K by rounding v (K - 1) / (L - 1).
What was read and how is returned with the samples, for results.json.
"""

from __future__ import annotations

import hashlib
import zipfile
import zlib
from pathlib import Path

import numpy as np
import torch

from genbench.core.spec import DataSpec

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
EIGHT_BIT = 256  # the levels an image file holds: the only default for `levels`


# What numpy raises on a file it cannot read (random bytes: its pickle message; a truncated
# .npz: zipfile's; a damaged member: zlib's on reading it).
UNREADABLE = (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error)


def _unreadable(path: Path) -> ValueError:
    return ValueError(
        f"samples={str(path)!r} is not a readable {path.suffix} file (corrupt, truncated or "
        "not written by numpy)"
    )


def _npz_array(path: Path, key: str | None) -> tuple[np.ndarray, str]:
    """The array `key` of an .npz, or its only one; a one-line error naming the arrays."""
    try:
        z = np.load(path, allow_pickle=False)
    except UNREADABLE as e:
        raise _unreadable(path) from e
    with z:
        names = list(z.keys())
        if not names:
            raise ValueError(f"samples={str(path)!r} holds no arrays")
        if key is None and len(names) > 1:
            raise ValueError(
                f"samples={str(path)!r} holds {len(names)} arrays; say which with key=NAME; "
                f"valid: {', '.join(names)}"
            )
        key = names[0] if key is None else str(key)
        if key not in names:
            raise ValueError(
                f"key={key!r} is not an array of {path.name}; valid: {', '.join(names)}"
            )
        try:
            return z[key], key
        except UNREADABLE as e:
            raise _unreadable(path) from e


def _folder(path: Path, spec: DataSpec) -> np.ndarray:
    from PIL import Image

    files = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise ValueError(f"samples={str(path)!r} holds no {'/'.join(IMAGE_SUFFIXES)} images")
    mode = "L" if spec.shape[0] == 1 else "RGB"
    return np.stack([np.asarray(Image.open(f).convert(mode)) for f in files])


def _read(path: Path, spec: DataSpec, key: str | None) -> tuple[np.ndarray, str | None]:
    """(the array, the .npz array's name or None) from a folder, .npy or .npz."""
    if path.suffix == ".npz":
        return _npz_array(path, key)
    if key is not None:
        raise ValueError(f"key={key!r} names an array of an .npz; samples={str(path)!r} is not one")
    if path.is_dir():
        return _folder(path, spec), None
    if path.suffix == ".npy":
        try:
            return np.load(path, allow_pickle=False), None
        except UNREADABLE as e:
            raise _unreadable(path) from e
    raise ValueError(f"samples={str(path)!r}: valid: a folder of images, a .npz or a .npy")


def _as_nchw(x: np.ndarray, spec: DataSpec) -> np.ndarray:
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
    return x.astype(np.int64)


def _unsaid_levels(low: int, high: int, spec: DataSpec) -> str:
    """The one-line error for a file whose levels `levels` does not say."""
    k = spec.num_levels
    fits = [n for n in dict.fromkeys((k, EIGHT_BIT)) if high < n]
    choices = [f"levels={n} ({'8-bit, ' if n == EIGHT_BIT else ''}0..{n - 1})" for n in fits]
    return (
        f"samples hold integers {low}..{high} and {spec.name} images have {k} levels "
        f"(0..{k - 1}): say how many levels the file's integers use; valid: "
        + (", ".join(choices) or f"levels=N with N > {high}")
    )


def file_levels(levels, low: int, high: int, spec: DataSpec) -> int:
    """The number of levels the file's integers use: `levels` checked against the values
    [low, high], or the data set's own where that is 8-bit; a one-line error otherwise."""
    if low < 0:
        raise ValueError(f"samples hold integers {low}..{high}; levels count from 0")
    if levels is None:
        if spec.num_levels == EIGHT_BIT and high < EIGHT_BIT:
            return EIGHT_BIT
        raise ValueError(_unsaid_levels(low, high, spec))
    if isinstance(levels, bool) or not isinstance(levels, int) or levels < 2:
        raise ValueError(
            f"levels={levels!r}; valid: an integer >= 2, the levels the file's integers use "
            "(256 for 0..255)"
        )
    if high >= levels:
        raise ValueError(
            f"samples hold integers {low}..{high}, beyond levels={levels} (0..{levels - 1})"
        )
    return levels


def to_spec_levels(x: np.ndarray, levels: int, spec: DataSpec) -> tuple[np.ndarray, str]:
    """Integers of `levels` levels as the data set's K levels, and the mapping in words."""
    k = spec.num_levels
    if levels == k:
        return x, "as is"
    return np.rint(x * (k - 1) / (levels - 1)).astype(
        np.int64
    ), f"round(v * {k - 1} / {levels - 1})"


def load_samples(
    path: str | Path, spec: DataSpec, levels: int | None = None, key: str | None = None
) -> tuple[torch.Tensor, dict]:
    """Samples from `path` in the layout of `spec`: long (N, C, H, W) in [0, K) for images,
    float (N, D) for points; and how they were read, for results.json: {"array": the .npz
    array's name or None, "values": [min, max] of the file's integers, "levels": the file's
    levels, "mapping": to the data set's levels} (images; {"array"} for points).
    `levels`: the number of levels the file's integers use (module docstring); `key`: the
    array of an .npz holding several. One-line ValueError naming what does not fit."""
    path = Path(path).expanduser()
    if not path.exists():
        raise FileNotFoundError(f"samples={str(path)!r} does not exist")
    x, array = _read(path, spec, key)
    if len(x) == 0:
        raise ValueError(f"samples={str(path)!r} holds no samples (shape {x.shape})")
    if not spec.is_image:
        if levels is not None:
            raise ValueError(f"levels={levels!r} applies to images; {spec.name} holds points")
        if x.ndim != 2 or x.shape[1] != spec.num_dims:
            raise ValueError(
                f"samples of shape {x.shape}; {spec.name} points are (N, {spec.num_dims})"
            )
        return torch.from_numpy(x.astype(np.float32)), {"array": array}
    x = _as_nchw(x, spec)
    low, high = int(x.min()), int(x.max())
    levels = file_levels(levels, low, high, spec)
    x, mapping = to_spec_levels(x, levels, spec)
    how = {"array": array, "values": [low, high], "levels": levels, "mapping": mapping}
    return torch.from_numpy(x), how


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
