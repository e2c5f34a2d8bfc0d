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


def _separable_nll_bits(base: HistogramBase, a: torch.Tensor, c: torch.Tensor, y: torch.Tensor):
    """-log2 p(y) (N,) of p(y) = q(y) exp(-sum_d a_d (y_d - c_d)^2) / Z, which factorises over
    dimensions: each 1-D density normalised by its own quadrature on a fine grid."""
    grid = -1 + (torch.arange(200000, dtype=torch.float64) + 0.5) * (2 / 200000)
    bits = torch.zeros(len(y), dtype=torch.float64)
    for d in range(len(a)):
        q = HistogramBase(base.probs[d : d + 1].double())
        ad, cd = float(a[d]), float(c[d])
        mass = (q.log_prob(grid[:, None]).exp() * torch.exp(-ad * (grid - cd) ** 2)).mean() * 2
        v = y[:, d].double()
        bits -= torch.log2(q.log_prob(v[:, None]).exp() * torch.exp(-ad * (v - cd) ** 2) / mass)
    return bits


def test_ladder_summary_nll_bpd_is_the_exact_nll_of_a_separable_density():
    """An EBM-shaped density with a known normaliser: base q times exp(-E), E a separable
    quadratic. From the mean unnormalised NLL of 64 points (-log q + E, what an EBM's data term
    averages), the rung's nll_bpd equals their exact mean NLL in bits/dim (1-D quadratures)
    within 4 of its standard errors: 0.031 of 2.71 bits/dim here, so an NLL off by 5% (2.84),
    log Z with the wrong sign (4.54) or nats read as bits all fail."""
    dim = 8
    base, energy, _ = _separable_case(dim, 1.0)
    a, c = torch.linspace(1, 4, dim), torch.linspace(-0.5, 0.5, dim)
    y = 2 * torch.rand(64, dim, generator=torch.Generator().manual_seed(5)) - 1
    exact_bpd = float(_separable_nll_bits(base, a, c, y).mean()) / dim
    mean_data_nats = float((energy(y) - base.log_prob(y)).mean())
    rungs = ais_ladder(energy, base, 256, [256], pilot_chains=16, seed=0, repeats=4)
    (rung,) = ladder_summary(rungs, mean_data_nats, dim)["log_z_ladder"]
    error_bpd = rung["log_z_stderr"] / (dim * math.log(2))
    assert abs(rung["nll_bpd"] - exact_bpd) < 4 * error_bpd < 0.02 * exact_bpd, (rung, exact_bpd)


def test_ladder_convergence_is_the_last_move_against_the_spread():
    rungs = [
        {"temperatures": 10, "chains": 8, "log_z": -3.0, "log_z_stderr": 0.1},
        {"temperatures": 40, "chains": 8, "log_z": -2.0, "log_z_stderr": 0.1},
        {"temperatures": 160, "chains": 8, "log_z": -1.95, "log_z_stderr": 0.1},
    ]
    out = ladder_summary(rungs, mean_data_nats=50.0, num_dims=64)
    assert out["log_z_converged"] is True  # the last quadrupling moved log Z by 0.05 < 0.1
    assert out["log_z_last_move"] == pytest.approx(0.05)
    assert ladder_summary(rungs[:2], 50.0, 64)["log_z_converged"] is False  # moved by 1.0
    assert ladder_summary(rungs[:1], 50.0, 64)["log_z_converged"] is False  # nothing to compare


def test_log_mean_exp_of_lognormal_weights_and_its_standard_error():
    """Weights w = exp(s z - s^2 / 2), z ~ N(0, 1), have mean 1 (log Z = 0) and relative
    variance exp(s^2) - 1, so log mean(w) over N weights has standard deviation
    sqrt((exp(s^2) - 1) / N) to first order. Over 2000 sets of 1000: the reported standard
    errors average to that within 2%, the estimates' own spread matches it within 6%, and the
    estimates centre on 0."""
    s, n, sets = 0.5, 1000, 2000
    z = torch.randn(sets, n, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    out = torch.tensor([log_mean_exp(log_w) for log_w in s * z - s**2 / 2])
    log_z, stderr = out[:, 0], out[:, 1]
    sd = math.sqrt((math.exp(s**2) - 1) / n)
    assert float(stderr.mean()) == pytest.approx(sd, rel=0.02)
    assert float(log_z.std()) == pytest.approx(sd, rel=0.06)
    assert abs(float(log_z.mean())) < 4 * sd / sets**0.5


def test_step_sizes_for_interpolates_in_the_inverse_temperature():
    pilot = {"betas": sigmoid_schedule(10), "step_sizes": torch.linspace(0.5, 0.05, 10).double()}
    same = step_sizes_for(pilot, 10)
    assert torch.allclose(same, pilot["step_sizes"])
    longer = step_sizes_for(pilot, 40)
    assert len(longer) == 40 and (longer.diff() <= 1e-12).all()  # still decreasing in beta
    assert longer[-1] == pytest.approx(0.05) and longer.max() <= 0.5


def test_repetitions_measure_the_spread_and_the_ladder_stops_once_a_doubling_moves_less():
    """Four independent repetitions per rung: the ladder doubles until a doubling moves the
    pooled log Z by less than their spread, well before the cap here, and ends near the exact
    value (the spread and standard error themselves: the test below)."""
    base, energy, exact = _separable_case(16, 8.0)
    temps = [4 * 2**i for i in range(10)]  # 4 .. 2048: the cap
    rungs = ais_ladder(energy, base, 16, temps, pilot_chains=16, seed=0, repeats=4)
    last = rungs[-1]
    assert last["repeats"] == 4 and last["chains"] == 64 and len(last["log_z_repeats"]) == 4
    assert len(rungs) < len(temps)  # converged before the cap
    assert abs(last["log_z"] - rungs[-2]["log_z"]) <= last["log_z_spread"]
    for before, after in zip(rungs[:-2], rungs[1:-1]):  # every earlier doubling moved more
        assert abs(after["log_z"] - before["log_z"]) > after["log_z_spread"]
    assert abs(last["log_z"] - exact) < 4 * last["log_z_stderr"] + 0.1, (last, exact)
    assert ladder_summary(rungs, 50.0, 64)["log_z_converged"] is True


def test_the_spread_and_stderr_are_those_of_repetitions_and_of_the_pooled_log_z():
    """With one temperature, AIS is importance sampling from the base (the weight is fixed
    before any move): log Z of C chains is log mean exp(-E(y)) over C draws y ~ q, which the test
    simulates directly (20,000 sets) for C = 64 (one repetition) and C = 256 (four pooled).
    Over 300 ladders of 4 repetitions, the mean squared spread is the first's variance and the
    mean squared standard error the second's, each within 15% (they read 0.91 and 0.94 of it:
    300 ladders' noise is 5-8% on a variance). That catches a spread with ddof=0 (25% low at 4
    repetitions) or a stderr over 4 instead of sqrt(4), not a 5% error in the standard error,
    which would take some 5000 repetitions."""
    base, energy, _ = _separable_case(4, 1.0)
    log_w = -energy(base.sample(256 * 20000, torch.Generator().manual_seed(123))).double()
    one, pooled = (torch.logsumexp(log_w.view(-1, c), 1) - math.log(c) for c in (64, 256))
    spread2, stderr2 = [], []
    for k in range(300):  # seeds 10 apart: repetition r of ladder k draws with seed 10 k + 1 + r
        rung = ais_ladder(energy, base, 64, [1], pilot_chains=4, seed=10 * k, repeats=4)[0]
        spread2.append(rung["log_z_spread"] ** 2)
        stderr2.append(rung["log_z_stderr"] ** 2)
    assert sum(spread2) / 300 == pytest.approx(float(one.var()), rel=0.15)
    assert sum(stderr2) / 300 == pytest.approx(float(pooled.var()), rel=0.15)
