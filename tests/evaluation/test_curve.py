"""Quality-vs-compute curves: one checkpoint scored under several samplers (metrics.curve)."""

from __future__ import annotations

import math

import pytest
import torch
from torch_fidelity.metric_fid import fid_features_to_statistics, fid_statistics_to_metric

from genbench.evaluation.bootstrap import fid_of_resamples, resample_indices
from genbench.evaluation.curves import fid_intervals
from genbench.run import run


def test_diffusion_curve_scores_each_sampler_and_matches_the_main_evaluation(fast_cfg):
    curve = (
        "eval.curve={diffusion: [{sampler: ddim, steps: 5}, {sampler: dpm_solver++, steps: 5},"
        " {sampler: ddim, steps: 10}]}"
    )
    # No test NLL (the curve is about samples): the diffusion bound is most of a run's evaluation.
    cfg = fast_cfg(
        "model=diffusion", "dataset=digits", "model.sampling_steps=10", "eval.nll=false", curve
    )
    m = run(cfg)["metrics"]
    points = m["curve"]
    assert [(p["sampler"], p["nfe"]) for p in points] == [
        ("DDIM-5", 5),
        ("DPM-Solver++(2M)-5", 5),
        ("DDIM-10", 10),
    ]
    # The intervals' coverage: test_paired_intervals_cover_the_population_fid_and_difference.
    assert all(p["fid_ci"][0] < p["fid_ci"][1] and p["samples_per_s"] > 0 for p in points)
    # The main evaluation's sampler (DDIM-10) on the same noise: the same FID, to the bit.
    assert m["sampler"] == "DDIM-10" and points[2]["fid"] == m["fid"]
    assert points[0]["fid"] != points[2]["fid"]
    # Paired differences from the module's own sampler on the same noise: zero against itself
    # (every resample too), and this setting's FID minus the main one's otherwise.
    assert points[2]["fid_diff"] == 0.0 and list(points[2]["fid_diff_ci"]) == [0.0, 0.0]
    assert points[0]["fid_diff"] == pytest.approx(points[0]["fid"] - m["fid"], rel=1e-12)
    lo, hi = points[0]["fid_diff_ci"]
    assert lo < hi and all(p["baseline"] == "DDIM-10" for p in points)
    # The module itself still samples with its own sampler afterwards.


def test_curve_with_a_sampler_the_family_lacks_fails_in_one_line(fast_cfg):
    cfg = fast_cfg("model=gan", "dataset=digits", "eval.curve={gan: [{sampler: ddim, steps: 5}]}")
    with pytest.raises(ValueError, match="gan has one sampler"):
        run(cfg)


def _population_fid(shift: float, variance: float, d: int) -> float:
    """FID of N(shift, variance I_d) against N(0, I_d): d (shift^2 + (sqrt(variance) - 1)^2)."""
    return d * (shift**2 + (math.sqrt(variance) - 1) ** 2)


def test_paired_intervals_cover_the_population_fid_and_difference():
    """200 simulated curve points of 500 samples (F = 4) against the exact reference N(0, I):
    the baseline's features 1.2 z + 0.5 and the setting's z + 0.3 + 0.5 e from the same initial
    noise z (e independent), so the two FIDs share most of their noise. The default (normal,
    95%) fid_ci covers the setting's population FID, and the paired fid_diff_ci the difference
    of population FIDs, each in 90-99% of the 200 sets (191 and 186 here; with half-widths
    halved 130 and 129; a difference's interval from unpaired resamples, 200: far too wide)."""
    d, n = 4, 500
    mu, sigma = torch.zeros(d, dtype=torch.float64), torch.eye(d, dtype=torch.float64)
    ref = {"mu": mu.numpy(), "sigma": sigma.numpy()}

    def fid(x: torch.Tensor) -> float:
        stats = fid_features_to_statistics(x)
        return fid_statistics_to_metric(stats, ref, False)["frechet_inception_distance"]

    truth = _population_fid(0.3, 1.25, d)
    truth_diff = truth - _population_fid(0.5, 1.44, d)
    covered = covered_diff = 0
    for seed in range(200):
        gen = torch.Generator().manual_seed(1000 + seed)
        z, e = (torch.randn(n, d, generator=gen, dtype=torch.float64) for _ in range(2))
        base, x = 1.2 * z + 0.5, z + 0.3 + 0.5 * e
        idx = resample_indices(n, 200, seed)
        resampled, base_resamples = (fid_of_resamples(f, mu, sigma, idx) for f in (x, base))
        ci, diff_ci = fid_intervals(resampled, fid(x), base_resamples, fid(base), 0.95, "normal")
        covered += ci[0] <= truth <= ci[1]
        covered_diff += diff_ci[0] <= truth_diff <= diff_ci[1]
    assert 0.90 <= covered / 200 <= 0.99 and 0.90 <= covered_diff / 200 <= 0.99, (
        covered,
        covered_diff,
    )
