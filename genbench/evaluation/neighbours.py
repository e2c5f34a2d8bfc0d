"""Nearest-neighbour distances between sets of feature vectors, in row chunks, in float64.

Float64 keeps torch.cdist's matrix-product form exact enough that a copy (distance 0) comes out
as 0 to about 1e-7, far below any neighbour distance the metrics compare it with.
"""

from __future__ import annotations

import torch

# Elements of one chunk of the distance matrix, float64: 16M -> 128 MB.
_CHUNK_ELEMENTS = 1 << 24


def distance_chunks(x: torch.Tensor, y: torch.Tensor):
    """Yield the Euclidean distances (rows, M) float64 of successive row chunks of x (N, F) to
    all of y (M, F), on y's device."""
    rows = max(1, _CHUNK_ELEMENTS // max(1, len(y)))
    y = y.double()
    for xc in x.to(y.device).double().split(rows):
        yield torch.cdist(xc, y)


def nearest(x: torch.Tensor, y: torch.Tensor, k: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """The k smallest distances from each row of x (N, F) to the rows of y (M, F), ascending.

    Returns (distances (N, k) float64, indices into y (N, k) long), on y's device. When x is y
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
