"""AIS recovers known partition functions within its standard error; the ladder shows the bias
of short schedules and is deterministic (common random numbers)."""

from __future__ import annotations

import math

import pytest
import torch

from genbench.estimators.ais import (
    ais_ladder,
    ais_log_z,
    ladder_summary,
    log_mean_exp,
    residual_ais_log_z,
    sigmoid_schedule,
    step_sizes_for,
)
from genbench.maths.histogram import HistogramBase


def _gaussian_energy(mean: torch.Tensor, std: torch.Tensor):
    return lambda y: 0.5 * (((y - mean) / std) ** 2).sum(1)


def _truncated_gaussian_log_z(mean: float, std: float, dim: int) -> float:
    """log of the integral over [-1, 1]^dim of exp(-||y - mean||^2 / (2 std^2))."""
    n = torch.distributions.Normal(0.0, 1.0)
    mass = n.cdf(torch.tensor((1 - mean) / std)) - n.cdf(torch.tensor((-1 - mean) / std))
    return dim * (math.log(math.sqrt(2 * math.pi) * std) + math.log(mass.item()))


def test_ais_recovers_truncated_gaussian_log_z_within_its_error():
    # Log weights spread by about 1 nat here: where the delta-method standard error is reliable
    # (at 16 dimensions and std 0.25 they spread by 3-4 nats and the error is under-estimated).
    dim, mean, std = 8, 0.3, 0.4
    energy = _gaussian_energy(torch.full((dim,), mean), torch.full((dim,), std))
    exact = _truncated_gaussian_log_z(mean, std, dim)
    base = HistogramBase.uniform(dim)
    z_scores = []
    for seed in range(3):
        gen = torch.Generator().manual_seed(seed)
        pilot = ais_log_z(energy, base, 16, 200, generator=gen)
        out = ais_log_z(energy, base, 64, 200, pilot["step_sizes"], generator=gen)
        assert out["stderr"] > 0 and 0.2 < out["accept_rate"] < 0.95
        assert out["log_w"].std() < 1.5
        z_scores.append((out["log_z"] - exact) / out["stderr"])
        assert abs(out["log_z"] - exact) < 4 * out["stderr"] + 0.05, (out, exact)
    assert abs(sum(z_scores) / 3) < 4, z_scores


def _separable_residual_log_z(base: HistogramBase, a: torch.Tensor, c: torch.Tensor) -> float:
    """log E_q[exp(-sum_d a_d (y_d - c_d)^2)] for a factorised q: a sum of 1-D quadratures."""
    g = -1 + (torch.arange(200000, dtype=torch.float64) + 0.5) * (2 / 200000)
    total = 0.0
    for d in range(len(a)):
        q = HistogramBase(base.probs[d : d + 1].double()).log_prob(g[:, None]).exp()
        integrand = q * torch.exp(-a[d].double() * (g - c[d].double()) ** 2)
        total += math.log(integrand.mean().item() * 2)
    return total


def _separable_case(dim: int, scale: float):
    base = HistogramBase(
        torch.softmax(torch.randn(dim, 17, generator=torch.Generator().manual_seed(0)), 1)
    )
    a, c = scale * torch.linspace(1, 4, dim), torch.linspace(-0.5, 0.5, dim)
    return base, (lambda y: (a * (y - c) ** 2).sum(1)), _separable_residual_log_z(base, a, c)


def test_residual_ais_recovers_a_separable_quadratic_log_z_within_its_error():
    base, energy, exact = _separable_case(8, 1.0)
    z_scores = []
    for seed in range(3):
        gen = torch.Generator().manual_seed(seed)
        pilot = residual_ais_log_z(energy, base, 16, 200, None, gen)
        out = residual_ais_log_z(energy, base, 64, 200, pilot["step_sizes"], gen)
        assert out["stderr"] > 0 and 0.2 < out["accept_rate"] < 0.95
        z_scores.append((out["log_z"] - exact) / out["stderr"])
        assert abs(out["log_z"] - exact) < 4 * out["stderr"] + 0.05, (out, exact)
    assert abs(sum(z_scores) / 3) < 4, z_scores


def test_ladder_shows_the_bias_of_short_schedules_and_converges():
    # A sharp energy (log Z_E about -18 nats): 4 temperatures are far too few, 256 enough.
    base, energy, exact = _separable_case(16, 8.0)
    rungs = ais_ladder(energy, base, 64, [4, 32, 256], pilot_chains=16, seed=0)
    assert [r["temperatures"] for r in rungs] == [4, 32, 256]
    assert all(r["chains"] == 64 and r["log_z_stderr"] > 0 for r in rungs)
    short, long = rungs[0], rungs[-1]
    assert abs(long["log_z"] - exact) < 4 * long["log_z_stderr"] + 0.1, (rungs, exact)
    # AIS under-estimates log Z when too short: by many of its own standard errors.
    assert exact - short["log_z"] > 4 * short["log_z_stderr"] + 0.5, (rungs, exact)


def test_ladder_is_deterministic_and_leaves_the_global_rng_alone():
    base, energy, _ = _separable_case(4, 1.0)
    state = torch.get_rng_state()
    first = ais_ladder(energy, base, 8, [4, 16], pilot_chains=4, seed=3)
    assert ais_ladder(energy, base, 8, [4, 16], pilot_chains=4, seed=3) == first
    assert ais_ladder(energy, base, 8, [4, 16], pilot_chains=4, seed=4) != first
    assert torch.equal(torch.get_rng_state(), state)


def test_ladder_summary_nll_and_convergence():
    rungs = [
        {"temperatures": 10, "chains": 8, "log_z": -3.0, "log_z_stderr": 0.1},
        {"temperatures": 40, "chains": 8, "log_z": -2.0, "log_z_stderr": 0.1},
        {"temperatures": 160, "chains": 8, "log_z": -1.95, "log_z_stderr": 0.1},
    ]
    out = ladder_summary(rungs, mean_data_nats=50.0, num_dims=64)
    bpd = [r["nll_bpd"] for r in out["log_z_ladder"]]
    assert bpd == pytest.approx([(50.0 + z) / (64 * math.log(2)) for z in (-3.0, -2.0, -1.95)])
    assert out["log_z_converged"] is True  # the last quadrupling moved log Z by 0.05 < 0.1
    assert ladder_summary(rungs[:2], 50.0, 64)["log_z_converged"] is False  # moved by 1.0
    assert ladder_summary(rungs[:1], 50.0, 64)["log_z_converged"] is False  # nothing to compare


def test_log_mean_exp_stderr_is_the_delta_method():
    log_w = torch.log(torch.tensor([1.0, 2.0, 3.0, 6.0], dtype=torch.float64))
    log_z, se = log_mean_exp(log_w)
    w = log_w.exp()
    assert log_z == pytest.approx(math.log(3.0))
    assert se == pytest.approx(float(w.std() / (w.mean() * 2)))


def test_step_sizes_for_interpolates_in_the_inverse_temperature():
    pilot = {"betas": sigmoid_schedule(10), "step_sizes": torch.linspace(0.5, 0.05, 10).double()}
    same = step_sizes_for(pilot, 10)
    assert torch.allclose(same, pilot["step_sizes"])
    longer = step_sizes_for(pilot, 40)
    assert len(longer) == 40 and (longer.diff() <= 1e-12).all()  # still decreasing in beta
    assert longer[-1] == pytest.approx(0.05) and longer.max() <= 0.5


def test_repetitions_measure_the_spread_and_the_ladder_stops_once_a_doubling_moves_less():
    """Four independent repetitions per rung: the rung's spread is their standard deviation and
    its standard error that over sqrt(4); the ladder doubles until a doubling moves the pooled
    log Z by less than the spread, well before the cap here, and ends near the exact value."""
    base, energy, exact = _separable_case(16, 8.0)
    temps = [4 * 2**i for i in range(10)]  # 4 .. 2048: the cap
    rungs = ais_ladder(energy, base, 16, temps, pilot_chains=16, seed=0, repeats=4)
    last = rungs[-1]
    assert last["repeats"] == 4 and last["chains"] == 64 and len(last["log_z_repeats"]) == 4
    assert last["log_z_spread"] == pytest.approx(float(torch.tensor(last["log_z_repeats"]).std()))
    assert last["log_z_stderr"] == pytest.approx(last["log_z_spread"] / 2)
    assert len(rungs) < len(temps)  # converged before the cap
    assert abs(last["log_z"] - rungs[-2]["log_z"]) <= last["log_z_spread"]
    for before, after in zip(rungs[:-2], rungs[1:-1]):  # every earlier doubling moved more
        assert abs(after["log_z"] - before["log_z"]) > after["log_z_spread"]
    assert abs(last["log_z"] - exact) < 4 * last["log_z_stderr"] + 0.1, (last, exact)
    assert ladder_summary(rungs, 50.0, 64)["log_z_converged"] is True
