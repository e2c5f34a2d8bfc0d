"""Nearest-neighbour distances between sets of feature vectors, in row chunks.

Distances are computed in the inputs' precision (at least float32): float64 inputs give copies
at distance 0 to about 1e-7; float32 ones (extractor features, pixels) to about
sqrt(|x|^2 * 1e-7), e.g. 0.02 for a 3072-pixel image, far below any neighbour distance the
metrics compare them with, at half the memory.
"""

from __future__ import annotations

import torch

# Elements of one chunk of the distance matrix: 16M -> 64 MB in float32.
_CHUNK_ELEMENTS = 1 << 24


def distance_chunks(x: torch.Tensor, y: torch.Tensor):
    """Yield the Euclidean distances (rows, M) of successive row chunks of x (N, F) to all of
    y (M, F), on y's device."""
    dtype = torch.promote_types(torch.promote_types(x.dtype, y.dtype), torch.float32)
    rows = max(1, _CHUNK_ELEMENTS // max(1, len(y)))
    y = y.to(dtype)
    for xc in x.to(y.device, dtype).split(rows):
        yield torch.cdist(xc, y)


def nearest(x: torch.Tensor, y: torch.Tensor, k: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """The k smallest distances from each row of x (N, F) to the rows of y (M, F), ascending.

    Returns (distances (N, k), indices into y (N, k) long), on y's device. When x is y
    (or holds rows of y), each row finds itself at distance 0: ask for k + 1 and drop column 0
    to exclude it, as the k-NN radius conventions below do.
    """
    if k > len(y):
        raise ValueError(f"{k} nearest neighbours asked of a set of {len(y)}")
    dists, idx = zip(*(d.topk(k, dim=1, largest=False) for d in distance_chunks(x, y)))
    return torch.cat(dists), torch.cat(idx)


def kth_neighbour_radius(x: torch.Tensor, k: int) -> torch.Tensor:
    """(N,): distance from each row of x (N, F) to its k-th nearest other row (itself excluded
    as the closest, the convention of torch-fidelity's precision/recall and of prdc)."""
    return nearest(x, x, k + 1)[0][:, k]
