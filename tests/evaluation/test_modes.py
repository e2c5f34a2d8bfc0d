"""Mode coverage on 8 gaussians counts what it should on data with known modes."""

from __future__ import annotations

import torch

from genbench.data.toy2d import EIGHT_GAUSSIAN_CENTERS, sample_toy
from genbench.evaluation.modes import mode_coverage


def test_true_data_covers_all_modes():
    cov = mode_coverage(torch.from_numpy(sample_toy("8gaussians", 2500, 0)))
    assert cov["modes_covered"] == 8
    # Within 3 std of the centre in 2-D: P(chi2_2 <= 9) = 1 - exp(-4.5) = 0.989.
    assert abs(cov["high_quality_fraction"] - 0.989) < 0.01


def test_collapsed_sampler_and_far_samples():
    g = torch.Generator().manual_seed(0)
    c = torch.as_tensor(EIGHT_GAUSSIAN_CENTERS[:3], dtype=torch.float32)
    x = c[torch.randint(0, 3, (1000,), generator=g)] + 0.1 * torch.randn(1000, 2, generator=g)
    # A few stray samples near a fourth mode do not make it covered (under 1%).
    stray = torch.as_tensor(EIGHT_GAUSSIAN_CENTERS[5], dtype=torch.float32).expand(5, 2)
    far = torch.full((200, 2), 10.0)
    cov = mode_coverage(torch.cat([x, stray, far]))
    assert cov["modes_covered"] == 3
    assert abs(cov["high_quality_fraction"] - 1005 / 1205) < 0.01
