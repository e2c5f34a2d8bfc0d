"""The table's cells from hand-made records: means, spreads, each run's own interval, KID's unit
per extractor, the EBM as a lower bound, the floor row, and the provenance footer."""

from __future__ import annotations

import pytest

from genbench.core.results import FLOOR_FAMILY
from genbench.reporting.aggregate import aggregate
from genbench.reporting.table_writers import sig3, to_latex, to_markdown


def record(family: str, seed: int, **metrics) -> dict:
    base = {
        "nll_kind": "exact",
        "fidelity_extractor": "classifier",
        "samples_per_s": 100.0,
        "train_flops": 1e12,
    }
    return {
        "status": "completed",
        "family": family,
        "model": family,
        "dataset": "digits",
        "seed": seed,
        "metrics": {**base, **metrics},
        "config": {"budget": {"kind": "flops", "flops": 1e12, "validations": 10}},
        "versions": {"git_commit": "aaaaaaaaaaaa", "git_dirty": False},
    }


def test_cells_hold_mean_spread_and_each_runs_own_uncertainty():
    recs = [
        record("arm", 0, nll_bpd=1.80, nll_bpd_stderr=0.010, fid=100.0, fid_ci=[90.0, 110.0]),
        record("arm", 1, nll_bpd=1.84, nll_bpd_stderr=0.014, fid=120.0, fid_ci=[105.0, 135.0]),
    ]
    (row,) = aggregate(recs)
    assert row["nll_bpd_mean"] == pytest.approx(1.82)
    assert row["nll_bpd_std"] == pytest.approx(0.0282842712, rel=1e-6)
    assert row["nll_bpd_within"] == pytest.approx(0.012)  # mean of the runs' standard errors
    assert row["fid_within"] == pytest.approx(12.5)  # mean half-width of the intervals
    md = to_markdown([row])
    assert "1.820 ± 0.028 (±0.012)" in md and "110.0 ± 14.1 (±12.5)" in md


def test_kid_is_shown_in_each_extractors_unit():
    classifier = record("vae", 0, kid_mean=2890.0, kid_ci=[2800.0, 2980.0])
    inception = record("vae", 0, kid_mean=0.00289, kid_ci=[0.0025, 0.0033])
    inception["metrics"]["fidelity_extractor"] = "inception"
    inception["dataset"] = "cifar10"
    md = to_markdown(aggregate([classifier, inception]))
    assert "| 2,890 (±90.0) |" in md  # classifier features: unscaled, no exponent
    assert "| 2.89 (±0.400) |" in md  # InceptionV3: x10^3
    assert "classifier features: unscaled" in md and "inception features: x10³" in md
    assert sig3(0.0289) == "0.0289" and sig3(28.94) == "28.9" and sig3(2.5e7) == "2.5e+07"


def test_an_estimate_claims_no_direction_its_biases_are_stated_and_the_floor_is_real_data():
    ladder = [{"temperatures": 250, "log_z": -3.0}, {"temperatures": 500, "log_z": -1.0}]
    ebms = [
        record(
            "ebm",
            seed,
            nll_kind="estimate",
            nll_bpd=2.1,
            nll_bpd_stderr=0.05,
            log_z_ladder=ladder,
            log_z_last_move_bpd=move,
            dequantisation_last_move_bpd=dq,
        )
        for seed, move, dq in ((0, 0.012, -0.0004), (1, 0.020, -0.0002))
    ]
    ebms[0]["metrics"]["log_z_converged"] = False
    floor = record(FLOOR_FAMILY, 0, fid=1.3, fid_ci=[0.8, 1.8])
    rows = aggregate([*ebms, floor])
    md = to_markdown(rows)
    assert "| 2.100 ± 0.000 (±0.050) estimate† |" in md
    assert "≥" not in md and "low in expectation," not in md.split("estimate: ")[0]
    assert "| real data |" in md and "| 1.3 (±0.5) |" in md
    # The footer: both biases with their signs and the measured moves, over the runs.
    assert "no direction is claimed" in md and "not ranked with exact values and bounds" in md
    assert "by +0.0120 to +0.0200 bits/dim" in md and "draws by -0.0004 to -0.0002" in md
    assert "†: the AIS ladder reached its longest schedule" in md
    assert r"$\geq$" not in to_latex(rows)


def test_the_footer_names_the_commits_that_trained_and_that_evaluated():
    rec = record("arm", 0, nll_bpd=1.8)
    rec["reevaluated_with"] = {"git_commit": "bbbbbbbbbbbb", "git_dirty": False}
    fresh = record("vae", 0, nll_bpd=1.9)  # evaluated in the run that trained it
    md = to_markdown(aggregate([rec, fresh]))
    assert "trained by genbench aaaaaaaaaa (clean)" in md
    assert "evaluated by genbench aaaaaaaaaa (clean), bbbbbbbbbb (clean)" in md


def test_the_footer_describes_trained_runs_and_lists_a_baseline_apart():
    """A baseline fitted in closed form has no budget, EMA or validations: the footer's protocol
    lines are the trained runs' alone, and the baseline is named with how it was fitted."""
    arm = record("arm", 0, nll_bpd=1.4)
    arm["config"]["callbacks"] = {"ema": {"decay": 0.999}}
    pixels = record("pixel-histogram", 0, nll_bpd=1.64, train_flops=0)
    pixels["config"] = None
    pixels["baseline"] = {"fitted": "per-pixel level counts of the 55000 training images + 0.1"}
    md = to_markdown(aggregate([arm, pixels]))
    assert "Budget per run: 1e+12 training FLOPs (forward + backward, PyTorch's counter);" in md
    assert "Weights: EMA decay 0.999 (all families). Seeds: 0." in md
    assert (
        "Not trained under the budget: pixel-histogram (per-pixel level counts of the 55000 "
        "training images + 0.1)." in md
    )


def test_a_table_of_samples_made_elsewhere_claims_no_budget_and_points_are_densities():
    """External samples alone: no 'Budget per run: unknown' line, only where they came from; a
    bits/dim of continuous points is of the density, not of discrete data."""
    ext = record("external", 0, nll_bpd=None)
    ext["config"], ext["external"] = None, {"count": 1000, "samples": "theirs.npz"}
    md = to_markdown(aggregate([ext]))
    assert "Budget per run" not in md and "Seeds:" not in md
    assert "Not trained under the budget: external (1000 samples from theirs.npz)." in md
    moons = record("flow", 0, nll_bpd=-0.5)
    moons["config"]["dataset"] = {"_target_": "genbench.data.Toy2DDataModule", "name": "moons"}
    md = to_markdown(aggregate([moons]))
    assert "bits/dim of the density (continuous points);" in md
    assert "bits/dim of the discrete data;" in to_markdown(aggregate([record("arm", 0)]))
