"""Quality-vs-compute curves: one checkpoint scored under several samplers (metrics.curve)."""

from __future__ import annotations

import pytest

from genbench.run import run


def test_diffusion_curve_scores_each_sampler_and_matches_the_main_evaluation(fast_cfg):
    curve = (
        "eval.curve={diffusion: [{sampler: ddim, steps: 5}, {sampler: dpm_solver++, steps: 5},"
        " {sampler: ddim, steps: 50}]}"
    )
    cfg = fast_cfg("model=diffusion", "dataset=digits", "model.sampling_steps=50", curve)
    m = run(cfg)["metrics"]
    points = m["curve"]
    assert [(p["sampler"], p["nfe"]) for p in points] == [
        ("DDIM-5", 5),
        ("DPM-Solver++(2M)-5", 5),
        ("DDIM-50", 50),
    ]
    for p in points:
        lo, hi = p["fid_ci"]
        assert lo <= p["fid"] <= hi and p["samples_per_s"] > 0
    # The main evaluation's sampler (DDIM-50) on the same noise: the same FID, to the bit.
    assert m["sampler"] == "DDIM-50" and points[2]["fid"] == m["fid"]
    assert points[0]["fid"] != points[2]["fid"]
    # Paired differences from the module's own sampler on the same noise: zero against itself
    # (every resample too), and this setting's FID minus the main one's otherwise.
    assert points[2]["fid_diff"] == 0.0 and list(points[2]["fid_diff_ci"]) == [0.0, 0.0]
    assert points[0]["fid_diff"] == pytest.approx(points[0]["fid"] - m["fid"], rel=1e-12)
    lo, hi = points[0]["fid_diff_ci"]
    assert lo < hi and all(p["baseline"] == "DDIM-50" for p in points)
    # The module itself still samples with its own sampler afterwards.


def test_curve_with_a_sampler_the_family_lacks_fails_in_one_line(fast_cfg):
    cfg = fast_cfg("model=gan", "dataset=digits", "eval.curve={gan: [{sampler: ddim, steps: 5}]}")
    with pytest.raises(ValueError, match="gan has one sampler"):
        run(cfg)
