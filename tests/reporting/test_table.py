"""Sweeps end to end: a multirun writes results files; the table equals them; W&B reads back."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from hydra.utils import instantiate

from genbench.core.results import read_results
from genbench.reporting.aggregate import aggregate
from genbench.reporting.collect import collect
from genbench.reporting.paired import paired_difference
from genbench.reporting.table_writers import MISSING, to_csv, to_latex, to_markdown, write_all
from genbench.reporting.wandb_offline import read_offline_run
from genbench.reporting.wandb_report import build_report
from tests.commands import genbench_here as genbench
from tests.commands import smoke
from tests.conftest import compose_config

SWEEP_MODELS = "vae,gan"  # two families: one with a likelihood, one without


def _sweep(out: Path, logger: str, seeds: str = "0,1") -> Path:
    """One real Hydra multirun: models x seeds on moons, a tiny FLOP budget."""
    proc = genbench(
        "train",
        "-m",
        f"model={SWEEP_MODELS}",
        f"seed={seeds}",
        "dataset=moons",
        *smoke(logger),
        "budget=flops",
        "budget.flops=6e9",  # about 15 VAE batches, 28 GAN batches (56 optimiser steps)
        "experiment_name=test_sweep",
        f"hydra.sweep.dir={out}",
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out


@pytest.fixture(scope="module")
def sweep_dir(tmp_path_factory) -> Path:
    return _sweep(tmp_path_factory.mktemp("sweep"), "wandb")


TIMINGS = {"samples_per_s", "sampling_time_s", "train_time_s", "eval_time_s"}


def test_rerunning_the_sweep_gives_identical_metrics_and_equal_flops(sweep_dir, tmp_path):
    """The FLOP budget makes a sweep reproducible bit for bit (timings aside), and every family
    trains within one batch's FLOPs of the same budget. The rerun repeats seed 1 of each
    family, in a sweep of its own (another logger: W&B does not change what is trained)."""
    again = _sweep(tmp_path / "again", "none", seeds="1")
    first = {p.parent.name: read_results(p) for p in sweep_dir.rglob("results.json")}
    second = {p.parent.name: read_results(p) for p in again.rglob("results.json")}
    assert len(first) == 4 and len(second) == 2 and second.keys() <= first.keys()
    for name, rec in second.items():
        a = {k: v for k, v in first[name]["metrics"].items() if k not in TIMINGS}
        b = {k: v for k, v in rec["metrics"].items() if k not in TIMINGS}
        assert a == b, name
    for name, rec in first.items():
        per_batch = rec["budget"]["flops_per_step"] * rec["budget"]["steps_per_batch"]
        assert 0 <= rec["metrics"]["train_flops"] - 6e9 < per_batch, name


def test_multirun_writes_one_results_file_per_job(sweep_dir):
    files = sorted(sweep_dir.rglob("results.json"))
    n_models = len(SWEEP_MODELS.split(","))
    assert len(files) == 2 * n_models
    seeds = sorted(json.loads(f.read_text())["seed"] for f in files)
    assert seeds == sorted([0, 1] * n_models)


def test_table_numbers_equal_results_files(sweep_dir):
    records, problems = collect(str(sweep_dir))
    assert problems == []
    rows = aggregate(records)
    for row in rows:
        files = [json.loads(p.read_text()) for p in sweep_dir.rglob("results.json")]
        mine = [f["metrics"] for f in files if f["model"] == row["model"]]
        assert row["runs"] == row["completed"] == 2 and row["seeds"] == [0, 1]
        for key in ("nll_bpd", "fid", "samples_per_s", "params"):
            vals = [m[key] for m in mine if m[key] is not None]
            if not vals:  # e.g. a GAN has no likelihood: the table says so, never 0
                assert row[f"{key}_mean"] is None
                continue
            a, b = vals  # two seeds: mean (a + b) / 2, standard deviation |a - b| / sqrt(2)
            assert row[f"{key}_mean"] == pytest.approx((a + b) / 2, rel=1e-12)
            assert row[f"{key}_std"] == pytest.approx(abs(a - b) / math.sqrt(2), rel=1e-12)
    assert any(r["nll_bpd_mean"] is None for r in rows)  # the GAN row
    rows = sorted(rows, key=lambda r: r["nll_bpd_mean"] is None)
    md = to_markdown(rows)
    assert f"{rows[0]['nll_bpd_mean']:.3f}" in md and " ± " in md
    assert MISSING in md  # IS is not defined for points
    assert "\\pm" in to_latex(rows)
    csv_text = to_csv(rows)
    assert repr(rows[0]["nll_bpd_mean"]) in csv_text or str(rows[0]["nll_bpd_mean"]) in csv_text
    assert "Seeds: 0, 1." in md and "EMA decay 0.999 (all families)" in md
    written = write_all(rows, sweep_dir / "table")
    assert {
        "table.md",
        "table.csv",
        "table.tex",
        "quality_vs_speed.png",
        "samples_montage.png",
    } <= set(written)


def test_wandb_offline_runs_give_the_same_table(sweep_dir):
    from_files = aggregate(collect(str(sweep_dir))[0])
    records, problems = collect(f"wandb-offline://{sweep_dir}")
    assert problems == [] and len(records) == 2 * len(SWEEP_MODELS.split(","))
    from_wandb = aggregate(records)
    keys = [
        "family",
        "model",
        "dataset",
        "runs",
        "nll_bpd_mean",
        "nll_bpd_std",
        "samples_per_s_mean",
        "params_mean",
        "train_time_s_mean",
        "train_flops_mean",
    ]
    for a, b in zip(from_files, from_wandb):
        for k in keys:
            if isinstance(a[k], str) or a[k] is None:
                assert a[k] == b[k], k
            else:
                assert a[k] == pytest.approx(b[k], rel=1e-9), k
        assert a["seeds"] == b["seeds"]


def test_malformed_results_skipped_with_message(sweep_dir, tmp_path):
    good = next(sweep_dir.rglob("results.json"))
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "results.json").write_text(good.read_text())
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "results.json").write_text('{"schema": 1, "status": "compl')
    records, problems = collect(str(tmp_path))
    assert len(records) == 1 and len(problems) == 1
    assert "b/results.json" in problems[0] and "not valid JSON" in problems[0]


def test_table_cli_prints_table_and_reports_skips(sweep_dir, tmp_path):
    bad = sweep_dir / "zz_bad"
    bad.mkdir(exist_ok=True)
    (bad / "results.json").write_text("[]")
    try:
        proc = genbench("table", f"source={sweep_dir}", f"out_dir={tmp_path}")
    finally:
        (bad / "results.json").unlink()
    assert proc.returncode == 0, proc.stderr
    assert "| family | model | dataset | seeds |" in proc.stdout
    assert (
        "Provenance: trained by genbench" in proc.stdout
        and "Budget per run: 6e+09 training FLOPs" in proc.stdout
    )
    assert "skipped:" in proc.stderr and "zz_bad" in proc.stderr
    assert (tmp_path / "table.md").exists()


def test_slurm_launcher_and_optuna_sweeper_compose_and_instantiate(tmp_path):
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from tests.conftest import CONF_DIR

    GlobalHydra.instance().clear()
    with initialize_config_dir(version_base="1.3", config_dir=CONF_DIR):
        cfg = compose(
            "train",
            overrides=["hydra/launcher=slurm", "hardware=multinode", "+hparams_search=vae_optuna"],
            return_hydra_config=True,
        )
    launcher = instantiate(cfg.hydra.launcher)
    assert type(launcher).__name__ == "SlurmLauncher"
    assert cfg.hydra.launcher.nodes == 2 and cfg.hydra.launcher.gpus_per_node == 4
    sweeper = instantiate(cfg.hydra.sweeper)
    assert type(sweeper).__name__ == "OptunaSweeper"


@pytest.mark.parametrize(
    "name", ["digits_benchmark", "toy2d_benchmark", "mnist_benchmark", "cifar10_benchmark"]
)
def test_experiments_compose(name, tmp_path):
    cfg = compose_config([f"+experiment={name}"], tmp_path)
    assert cfg.experiment_name == name


def test_paired_difference_equals_a_direct_computation(tmp_path):
    rng = np.random.default_rng(0)
    truth = rng.gamma(2.0, 1.0, size=300)  # per-example difficulty, shared by both models
    records = []
    for model, shift in (("a", 0.0), ("b", 0.05)):
        for seed in (0, 1):
            run = tmp_path / f"{model}{seed}"
            run.mkdir()
            np.save(run / "test_nll_bpd.npy", truth + shift + rng.normal(0, 0.01, 300))
            records.append({"model": model, "seed": seed, "status": "completed", "_path": str(run)})
    out = paired_difference(records, "a", "b")
    for r in out["per_seed"]:
        d = np.load(tmp_path / f"a{r['seed']}" / "test_nll_bpd.npy") - np.load(
            tmp_path / f"b{r['seed']}" / "test_nll_bpd.npy"
        )
        assert r["mean"] == pytest.approx(d.mean(), abs=1e-12)
        assert r["ci"][0] < -0.05 < r["ci"][1] < 0  # covers the truth; b is worse, and it shows
    assert out["mean"] == pytest.approx(np.mean([r["mean"] for r in out["per_seed"]]))
    with pytest.raises(ValueError, match="no completed runs of model 'c'"):
        paired_difference(records, "a", "c")


def test_paired_intervals_cover_the_true_difference_about_95_percent_of_the_time(tmp_path):
    """200 seeds of two models on the same 300 test examples: bits/dim = the example's
    difficulty (shared) + the model's offset (b: 0.05 worse) + the run's own noise (sd 0.02,
    skewed: exponential). Each seed's 95% interval of mean(a - b) covers -0.05 in 90-99% of
    them, and the half-widths average 1.96 times the mean's true standard deviation,
    0.02 sqrt(2 / 300), within 2% (coverage alone would miss a width 10% off)."""
    rng = np.random.default_rng(1)
    difficulty = rng.gamma(2.0, 1.0, size=300)
    records = []
    for seed in range(200):
        for model, offset in (("a", 0.0), ("b", 0.05)):
            run = tmp_path / f"{model}{seed}"
            run.mkdir()
            noise = 0.02 * (rng.exponential(1.0, 300) - 1)
            np.save(run / "test_nll_bpd.npy", difficulty + offset + noise)
            records.append({"model": model, "seed": seed, "status": "completed", "_path": str(run)})
    rows = paired_difference(records, "a", "b")["per_seed"]
    covered = sum(r["ci"][0] <= -0.05 <= r["ci"][1] for r in rows)
    assert len(rows) == 200 and 0.90 <= covered / 200 <= 0.99, covered
    half = np.mean([(r["ci"][1] - r["ci"][0]) / 2 for r in rows])
    assert half == pytest.approx(1.959963984540054 * 0.02 * math.sqrt(2 / 300), rel=0.02)


def test_offline_runs_carry_flat_columns_group_and_curves_names(sweep_dir):
    for run_dir in sweep_dir.rglob("offline-run-*"):
        run = read_offline_run(run_dir)
        cfg = run["config"]
        assert run["group"] == "test_sweep" and run["job_type"] == "train"
        assert cfg["family"] in ("vae", "gan") and cfg["model_name"] == cfg["family"]
        assert cfg["dataset_name"] == "moons" and cfg["seed"] in (0, 1)
        assert cfg["budget_kind"] == "flops" and cfg["budget_value"] == 6e9
        assert cfg["ema_decay"] == 0.999 and cfg["nfe"] == 1 and isinstance(cfg["sampler"], str)
        assert cfg["nll_kind"] in ("bound", "none")


def test_wandb_report_spec_offline_holds_the_panels_and_filters(sweep_dir, tmp_path, monkeypatch):
    import wandb_workspaces.reports.v2 as wr

    args = [
        f"source={sweep_dir}",
        f"out_dir={tmp_path}",
        "wandb_report=true",
        "wandb_entity=someone",
    ]
    monkeypatch.setenv("WANDB_MODE", "offline")
    proc = genbench("table", *args)
    assert proc.returncode == 0, proc.stderr
    spec = json.loads((tmp_path / "wandb_report.json").read_text())
    assert spec["entity"] == "someone" and spec["project"]
    assert spec["runset"]["filters"] == (
        "Config('experiment_name') = 'test_sweep' and Config('dataset_name') = 'moons'"
    )
    assert spec["runset"]["groupby"] == ["config.family"]
    panels = next(b["panels"] for b in spec["blocks"] if b["kind"] == "panels")
    kinds = {
        (p["kind"], p.get("x"), str(p.get("y") or p.get("metrics") or p.get("keys")))
        for p in panels
    }
    assert ("scatter", "samples_per_s", "fid") in kinds
    assert ("bar", None, "['nll_bpd']") in kinds
    assert ("line", "curve/nfe", "['curve/fid']") in kinds
    assert ("media", None, "['samples', 'nearest_neighbours']") in kinds
    text = "\n".join(b.get("text", "") for b in spec["blocks"])
    assert "Provenance: trained by genbench" in text and "| vae | vae | moons |" in text
    # The spec maps onto real wandb-workspaces objects (validated by its own classes; saving
    # them needs a login, which `genbench-report` does).
    report = build_report(spec)
    assert isinstance(report, wr.Report) and report.entity == "someone"
    grid = next(b for b in report.blocks if isinstance(b, wr.PanelGrid))
    assert {type(p).__name__ for p in grid.panels} == {
        "BarPlot",
        "ScatterPlot",
        "LinePlot",
        "MediaBrowser",
    }
    assert grid.runsets[0].filters == spec["runset"]["filters"]
