"""The shared distribution maths against torch.distributions, mpmath and brute force."""

from __future__ import annotations

import math

import mpmath
import pytest
import torch
from torch.distributions import Normal, kl_divergence

from genbench.maths.distributions import (
    LOG_2PI,
    bits_per_dim,
    discretized_gaussian_log_likelihood,
    gaussian_log_prob,
    levels_to_unit,
    normal_kl,
    unit_to_levels,
)


def test_gaussian_log_prob_matches_torch_distributions():
    torch.manual_seed(0)
    x, mean, log_std = torch.randn(3, 100, dtype=torch.float64) * 3
    want = Normal(mean, log_std.exp()).log_prob(x)
    assert torch.allclose(gaussian_log_prob(x, mean, log_std), want, rtol=1e-12, atol=1e-12)
    std_normal = Normal(torch.zeros(()), torch.ones(()))
    assert torch.allclose(gaussian_log_prob(x.float(), 0.0, 0.0), std_normal.log_prob(x.float()))
    assert LOG_2PI == pytest.approx(math.log(2 * math.pi), rel=1e-15)


def test_normal_kl_matches_torch_distributions():
    torch.manual_seed(0)
    m1, lv1, m2, lv2 = torch.randn(4, 100, dtype=torch.float64) * 2
    want = kl_divergence(Normal(m1, (0.5 * lv1).exp()), Normal(m2, (0.5 * lv2).exp()))
    assert torch.allclose(normal_kl(m1, lv1, m2, lv2), want, rtol=1e-12, atol=1e-12)
    std = kl_divergence(Normal(m1, (0.5 * lv1).exp()), Normal(0.0, 1.0))
    assert torch.allclose(normal_kl(m1, lv1, 0.0, 0.0), std, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("k", [2, 17, 256])
def test_discretized_gaussian_sums_to_one_over_the_levels(k):
    torch.manual_seed(0)
    mean = torch.cat([torch.randn(50) * 2, torch.tensor([-30.0, 30.0, 0.999, -1.0])])
    log_scale = torch.cat([torch.randn(50) * 3 - 3, torch.tensor([0.0, 0.0, -9.0, -9.0])])
    levels = torch.arange(k).view(k, 1).expand(k, len(mean))
    log_p = discretized_gaussian_log_likelihood(levels, mean, log_scale, k)
    assert torch.isfinite(log_p).all()
    total = log_p.double().exp().sum(0)
    assert torch.allclose(total, torch.ones(len(mean), dtype=torch.float64))


def _log_bin_mass(x: int, mean: float, std: float, k: int) -> float:
    """log P(level x) by mpmath at 60 digits: the bin's Normal mass, tails at the end levels.

    mpmath's numbers have unbounded exponents, so Phi(-z) is exact to 60 digits even where it is
    1e-80000; masses right of the mean are taken as Phi(-a) - Phi(-b) for the same reason."""
    mpmath.mp.dps = 60
    centre, half = mpmath.mpf(2 * x) / (k - 1) - 1, mpmath.mpf(1) / (k - 1)
    a = (centre - half - mean) / std if x > 0 else -mpmath.inf
    b = (centre + half - mean) / std if x < k - 1 else mpmath.inf
    mass = mpmath.ncdf(-a) - mpmath.ncdf(-b) if a > 0 else mpmath.ncdf(b) - mpmath.ncdf(a)
    return float(mpmath.log(mass))


def test_discretized_gaussian_matches_mpmath_in_the_tails():
    """Bins tens of standard deviations from the mean, where 1 - Phi in float32 is 0 and the
    naive log(Phi(b) - Phi(a)) is -inf, on both sides and at the end levels."""
    k = 17
    cases = [  # (level, mean, std)
        (8, 0.0, 0.05),  # the bin around the mean
        (12, 0.0, 0.05),  # 7..9 std right of the mean: a naive float32 difference is 0
        (3, 0.6, 0.03),  # far left
        (16, -0.9, 0.05),  # the right end level takes the tail, 35 std out
        (0, 0.95, 0.04),  # the left end level, far out
        (9, 0.0, 1e-4),  # 600 std out: log P ~ -2e5 nats
    ]
    g = torch.Generator().manual_seed(0)  # and ordinary bins: random levels, means and scales
    cases += [
        (int(torch.randint(0, k, (), generator=g)), float(m), float(s))
        for m, s in zip(torch.randn(20, generator=g), torch.rand(20, generator=g) * 0.5 + 0.01)
    ]
    x = torch.tensor([c[0] for c in cases])
    mean = torch.tensor([c[1] for c in cases])
    log_scale = torch.tensor([math.log(c[2]) for c in cases])
    got = discretized_gaussian_log_likelihood(x, mean, log_scale, k)
    want = torch.tensor([_log_bin_mass(*c, k) for c in cases], dtype=torch.float64)
    assert torch.allclose(got.double(), want, rtol=1e-4, atol=1e-4), (got, want)
    # the case the tail-accurate form is for: the naive float32 subtraction loses it
    p = Normal(mean, log_scale.exp())
    centre = levels_to_unit(x, k)
    naive = torch.log(p.cdf(centre + 1 / (k - 1)) - p.cdf(centre - 1 / (k - 1)))
    assert torch.isinf(naive[1]) and torch.isfinite(got).all()


def test_levels_round_trip_and_rounding():
    k = 17
    x = torch.arange(k)
    y = levels_to_unit(x, k)
    assert y[0] == -1 and y[-1] == 1 and y.dtype == torch.float32
    assert torch.allclose(y, torch.linspace(-1, 1, k))
    assert torch.equal(unit_to_levels(y, k), x)
    # anything within half a bin of a level rounds to it; outside [-1, 1] clamps to the ends
    half = 1 / (k - 1)
    jitter = (torch.rand(k) * 2 - 1) * 0.99 * half
    assert torch.equal(unit_to_levels(y + jitter, k), x)
    assert unit_to_levels(torch.tensor([-3.0, 5.0]), k).tolist() == [0, k - 1]
    assert levels_to_unit(x, k, torch.float64).dtype == torch.float64


def test_bits_per_dim_by_hand():
    assert bits_per_dim(torch.tensor(64 * math.log(2)), 64).item() == pytest.approx(1.0)
    assert bits_per_dim(torch.tensor(3.0), 1).item() == pytest.approx(3.0 / math.log(2))
