"""The per-pixel histogram density: normalised, exact sampling, inverse CDF, discrete NLL."""

from __future__ import annotations

import math

import torch

from genbench.maths.histogram import HistogramBase


def test_histogram_base_is_normalised_and_factorises():
    probs = torch.softmax(torch.randn(3, 5, generator=torch.Generator().manual_seed(0)), 1)
    base = HistogramBase(probs)
    y = -1 + (torch.arange(20000) + 0.5) * (2 / 20000)  # cell midpoints on [-1, 1]
    for d in range(3):
        one = HistogramBase(probs[d : d + 1])
        assert abs(one.log_prob(y[:, None]).exp().mean().item() * 2 - 1) < 1e-4
    s = base.sample(1000, torch.Generator().manual_seed(1))
    assert s.min() >= -1 and s.max() <= 1
    parts = sum(HistogramBase(probs[d : d + 1]).log_prob(s[:, d : d + 1]) for d in range(3))
    assert torch.allclose(base.log_prob(s), parts)


def test_uniform_is_two_to_the_minus_d():
    y = torch.rand(10, 7) * 2 - 1
    assert torch.allclose(HistogramBase.uniform(7).log_prob(y), torch.full((10,), -7 * math.log(2)))


def test_icdf_maps_uniform_to_the_base():
    gen = torch.Generator().manual_seed(0)
    probs = torch.softmax(2 * torch.randn(4, 17, generator=gen), 1)
    base = HistogramBase(probs)
    u = torch.rand(100000, 4, generator=gen)
    y = base.icdf(u)
    assert y.min() >= -1 and y.max() <= 1
    # Monotone in u, and the bin frequencies of icdf(uniform) are the probs (100000 draws:
    # binomial standard deviation <= 0.0016).
    order = u[:, 0].argsort()
    assert (y[order, 0].diff() >= 0).all()
    bins = ((y + 1) / 2 * 17).floor().long().clamp(0, 16)
    freq = torch.stack([torch.bincount(bins[:, d], minlength=17) for d in range(4)]) / len(u)
    assert (freq - probs).abs().max() < 0.008
    # Within a bin the draws are uniform: the within-bin position has mean 1/2.
    frac = (y + 1) / 2 * 17 - bins
    assert abs(frac.mean().item() - 0.5) < 0.01


def test_level_nll_is_the_dequantised_density_times_the_bin_width():
    gen = torch.Generator().manual_seed(0)
    probs = torch.softmax(torch.randn(6, 17, generator=gen), 1)
    base = HistogramBase(probs)
    x = torch.randint(0, 17, (50, 6), generator=gen)
    y = (x + torch.rand(x.shape, generator=gen)) * (2 / 17) - 1  # inside each level's bin
    # -log P(x) = -log q(y) - D log(2 / K): q is constant on each bin of width 2 / K.
    assert torch.allclose(base.level_nll(x), -base.log_prob(y) - 6 * math.log(2 / 17), atol=1e-4)


def test_level_counts_equal_the_one_hot_sum():
    from genbench.maths.histogram import level_counts

    x = torch.randint(0, 5, (50, 1, 3, 4), generator=torch.Generator().manual_seed(0))
    expected = torch.nn.functional.one_hot(x.flatten(1), 5).sum(0)
    assert torch.equal(level_counts(x, 5), expected)
