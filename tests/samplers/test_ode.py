"""The ODE solvers: exact where their order says so, the observed convergence order on a
time-dependent linear ODE with a closed-form solution, both directions, and honest NFE counts."""

from __future__ import annotations

import math

import pytest
import torch

from genbench.samplers.base import run
from genbench.samplers.ode import Euler, Heun, Midpoint, make_solver

ORDER = {"euler": 1, "heun": 2, "midpoint": 2}
# dx/dt = (1 + 2t) A x  has  x(t) = expm((t + t^2) A) x(0), since A commutes with itself.
A = torch.tensor([[-0.5, 2.0], [-2.0, -0.3]], dtype=torch.float64)


def linear_velocity(x: torch.Tensor, t: float) -> torch.Tensor:
    return (1 + 2 * t) * x @ A.T


def exact(x0: torch.Tensor, t0: float, t1: float) -> torch.Tensor:
    """x(t1) from x(t0) for the linear ODE above, (B, 2) float64."""
    phi = torch.linalg.matrix_exp((t1 + t1**2 - t0 - t0**2) * A)
    return x0 @ phi.T


def solve(name: str, steps: int, x: torch.Tensor, t0: float, t1: float, grading: tuple):
    rho, fine = grading
    fine_at = {"start": t0, "end": t1}.get(fine)
    return run(make_solver(name, steps, t0, t1, rho, fine_at), linear_velocity, x)


@pytest.mark.parametrize("name", sorted(ORDER))
@pytest.mark.parametrize("direction", [(0.0, 1.0), (1.0, 0.0), (0.2, 0.7)])
@pytest.mark.parametrize("grading", [(1.0, None), (3.0, "end"), (2.0, "start")])
def test_observed_convergence_order(name, direction, grading):
    x0 = torch.tensor([[1.0, 0.5], [-0.3, 2.0]], dtype=torch.float64)
    want = exact(x0, *direction)
    # Graded grids' largest steps are up to rho times the uniform ones: start finer.
    sizes = (64, 128, 256) if grading[0] == 1.0 else (256, 512, 1024)
    errors = [(solve(name, n, x0, *direction, grading) - want).abs().max().item() for n in sizes]
    orders = [math.log2(errors[i] / errors[i + 1]) for i in range(2)]
    for order in orders:  # an order-1 scheme gives ~1.0, order-2 ~2.0
        assert abs(order - ORDER[name]) < 0.1, (name, errors, orders)
    assert errors[-1] < (0.15 if ORDER[name] == 1 else 1e-3), errors  # and converging to it


@pytest.mark.parametrize("name", sorted(ORDER))
def test_exact_on_polynomial_velocities_of_their_order(name):
    """Euler integrates a constant velocity exactly; Heun (trapezoid) and the midpoint rule
    integrate a velocity linear in t exactly, so their stage times must be right."""
    x = torch.zeros(3, 2, dtype=torch.float64)
    c = torch.tensor([0.7, -1.3], dtype=torch.float64)
    got = run(make_solver(name, 3, 1.0, 0.25), lambda x, t: c.expand_as(x), x.clone())
    assert torch.allclose(got, (0.25 - 1.0) * c.expand_as(x), atol=1e-14)
    if ORDER[name] == 2:
        got = run(make_solver(name, 3, 0.0, 1.0), lambda x, t: torch.full_like(x, 3 * t), x)
        assert torch.allclose(got, torch.full_like(x, 1.5), atol=1e-14)  # int_0^1 3t dt
    else:  # Euler's left Riemann sum of 3t over 3 steps: (0 + 1 + 2) / 3 = 1
        got = run(make_solver(name, 3, 0.0, 1.0), lambda x, t: torch.full_like(x, 3 * t), x)
        assert torch.allclose(got, torch.ones_like(x), atol=1e-14)


@pytest.mark.parametrize("t_start,t_end", [(0.0, 1.0), (1.0, 0.0)])
def test_graded_grid_shrinks_steps_towards_fine_at(t_start, t_end):
    uniform = make_solver("euler", 8, t_start, t_end)
    assert uniform.grid == pytest.approx([t_start + (t_end - t_start) * i / 8 for i in range(9)])
    for fine_at in (t_start, t_end):
        grid = make_solver("euler", 8, t_start, t_end, rho=3.0, fine_at=fine_at).grid
        assert grid[0] == t_start and grid[-1] == t_end and len(grid) == 9
        sizes = [abs(b - a) for a, b in zip(grid, grid[1:], strict=False)]
        assert sum(sizes) == pytest.approx(1.0)
        # the step next to fine_at is (1/8)^3 of the interval, and sizes grow away from it
        near = sizes if fine_at == t_start else sizes[::-1]
        assert near[0] == pytest.approx(8.0**-3) and near == sorted(near)


@pytest.mark.parametrize("cls,calls_per_step", [(Euler, 1), (Heun, 2), (Midpoint, 2)])
def test_nfe_counts_network_calls(cls, calls_per_step):
    calls = []

    def counting(x, t):
        calls.append(t)
        return linear_velocity(x, t)

    solver = cls(0.0, 1.0)
    solver.set_timesteps(12)
    x = torch.randn(4, 2, dtype=torch.float64)
    first = run(solver, counting, x)
    assert len(calls) == solver.nfe == 12 * calls_per_step
    assert calls == list(solver.timesteps)
    assert solver.label == f"{cls.name}-{12 * calls_per_step}"
    # The solver keeps no state between runs: a second run gives the same answer.
    assert torch.equal(run(solver, counting, x), first)
    if cls is Heun:  # each stage is a listed timestep: t_i, then t_{i+1}
        assert solver.timesteps[:4] == [0.0, 1 / 12, 1 / 12, 2 / 12]


def test_bad_arguments_are_refused_in_one_line():
    with pytest.raises(ValueError, match="valid: \\['euler', 'heun', 'midpoint'\\]"):
        make_solver("rk4", 4, 0.0, 1.0)
    with pytest.raises(ValueError, match="num_steps=0"):
        make_solver("heun", 0, 0.0, 1.0)
    with pytest.raises(ValueError, match="t_end=1.5"):
        Euler(0.0, 1.5)
    with pytest.raises(ValueError, match="fine_at=0.5; valid with rho=2.0: 1.0 or 0.0"):
        make_solver("euler", 4, 1.0, 0.0, rho=2.0, fine_at=0.5)
