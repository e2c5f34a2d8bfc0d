"""Reading the idx files of MNIST and Fashion-MNIST (LeCun's format) with one-line errors.

An idx file: 2 zero bytes, a type byte (0x08 = unsigned byte), the number of dimensions, then
each dimension as a big-endian uint32, then the data. Images are idx3 (N, H, W), labels idx1 (N).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

UBYTE = 0x08


class IdxError(ValueError):
    """An idx file that is missing, truncated, of another kind, or inconsistent with its pair."""


def read_idx(path: str | Path, ndim: int) -> torch.Tensor:
    """The array of an unsigned-byte idx file with `ndim` dimensions, as a uint8 tensor."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"idx file {str(path)!r} does not exist")
    data = path.read_bytes()
    header = 4 + 4 * ndim
    if len(data) < header:
        raise IdxError(f"idx file {str(path)!r} is truncated ({len(data)} bytes, no full header)")
    magic = int.from_bytes(data[:4], "big")
    expected = (UBYTE << 8) | ndim
    if magic != expected:
        raise IdxError(
            f"idx file {str(path)!r} has magic number 0x{magic:08x}, expected 0x{expected:08x} "
            f"(unsigned bytes, {ndim} dimensions)"
        )
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    size = int(np.prod(shape))
    if len(data) - header != size:
        raise IdxError(
            f"idx file {str(path)!r} holds {len(data) - header} data bytes, its header "
            f"{shape} says {size}" + (" (truncated)" if len(data) - header < size else "")
        )
    return torch.from_numpy(np.frombuffer(data, np.uint8, size, header).reshape(shape).copy())


def read_images_and_labels(images: Path, labels: Path) -> tuple[torch.Tensor, torch.Tensor]:
    """(x long (N, 1, H, W) in [0, 256), y long (N,)) from a pair of idx files."""
    x, y = read_idx(images, 3), read_idx(labels, 1)
    if len(x) != len(y):
        raise IdxError(
            f"idx files disagree: {str(images)!r} holds {len(x)} images, "
            f"{str(labels)!r} {len(y)} labels"
        )
    return x.long().unsqueeze(1), y.long()
