"""Grid quadrature of log Z against the closed form of a Gaussian."""

from __future__ import annotations

import math

import torch

from genbench.estimators.quadrature import grid_log_z, refined_grid_log_z


def _gaussian_energy(mean: torch.Tensor, std: torch.Tensor):
    return lambda y: 0.5 * (((y - mean) / std) ** 2).sum(1)


def test_quadrature_log_z_matches_gaussian():
    mean, std = torch.tensor([0.5, -1.0]), torch.tensor([0.3, 0.8])
    lo, hi = (mean - 8 * std).double(), (mean + 8 * std).double()
    log_z, change = refined_grid_log_z(_gaussian_energy(mean, std), lo, hi, n=64, tol=0.01)
    exact = math.log(2 * math.pi) + std.log().sum().item()
    assert abs(log_z - exact) < 0.01 and change < 0.01
    # A grid too coarse for the narrow axis is off by more than the tolerance: the refinement
    # is what makes the estimate good.
    assert abs(grid_log_z(_gaussian_energy(mean, std), lo, hi, 4) - exact) > 0.05


def test_quadrature_of_zero_energy_is_the_log_volume():
    lo, hi = torch.tensor([-1.0, 0.0], dtype=torch.float64), torch.tensor([3.0, 0.5]).double()
    assert abs(grid_log_z(lambda y: torch.zeros(len(y)), lo, hi, 16) - math.log(2.0)) < 1e-9
