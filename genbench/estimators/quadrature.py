"""log Z = log of the integral of exp(-E) over a box, by the midpoint rule on a grid.

For low-dimensional energies (2-D points): n^D cells, refined by halving the cell size until
two resolutions agree; the last change is the reported numerical error.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

EnergyFn = Callable[[torch.Tensor], torch.Tensor]


def grid_log_z(
    energy_fn: EnergyFn, lo: torch.Tensor, hi: torch.Tensor, n: int, chunk: int = 65536
) -> float:
    """log of the integral of exp(-E) over the box [lo, hi] (D,) by the midpoint rule, n^D cells.

    energy_fn maps float32 (N, D) to (N,); the sum is taken in float64.
    """
    d = len(lo)
    axes = [
        lo[i] + (torch.arange(n, device=lo.device, dtype=torch.float64) + 0.5) * (hi[i] - lo[i]) / n
        for i in range(d)
    ]
    grid = torch.cartesian_prod(*axes).view(-1, d)
    neg_e = torch.cat([-energy_fn(g.float()).double() for g in grid.split(chunk)])
    log_cell = torch.log(hi - lo).double().sum() - d * math.log(n)
    return float(torch.logsumexp(neg_e, 0) + log_cell)


def refined_grid_log_z(
    energy_fn: EnergyFn,
    lo: torch.Tensor,
    hi: torch.Tensor,
    n: int,
    tol: float,
    max_n: int = 1024,
) -> tuple[float, float]:
    """(log Z, |change from the last halving of the cell size|): doubles n from `n` until the
    change is below `tol` or n reaches `max_n`."""
    prev = grid_log_z(energy_fn, lo, hi, n)
    while True:
        n *= 2
        cur = grid_log_z(energy_fn, lo, hi, n)
        if abs(cur - prev) < tol or n >= max_n:
            return cur, abs(cur - prev)
        prev = cur
