"""W&B offline, as a user meets it: a run prints no W&B warning and ends with its completed line;
a re-evaluation keeps the evaluation it replaces and leaves W&B agreeing with results.json; the
committed results.json files become offline W&B runs that read back as the same table."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from genbench.core.results import METRIC_KEYS, read_results
from genbench.reporting.aggregate import aggregate
from genbench.reporting.collect import collect
from genbench.reporting.wandb_offline import merge_runs, read_offline_run
from tests.commands import genbench_here

ROOT = Path(__file__).resolve().parents[2]
RUNS = ROOT / "docs" / "benchmark" / "digits" / "runs"


def _cli(app: str, *args: str, ok: bool = True, **env_values: str) -> str:
    """stdout and stderr as one console shows them, with W&B's own printing on (no
    WANDB_SILENT: what a user sees)."""
    env = {k: v for k, v in os.environ.items() if k not in ("WANDB_SILENT", "WANDB_API_KEY")}
    env.update({"WANDB_MODE": "offline", "PYTHONUNBUFFERED": "1", **env_values})
    out = subprocess.run(
        [sys.executable, "-m", f"genbench.{app}", *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=600,
        env=env,
    )
    assert (out.returncode == 0) == ok, out.stdout[-3000:]
    return out.stdout


def _last_line(output: str) -> str:
    return [ln for ln in output.splitlines() if ln.strip()][-1]


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> tuple[Path, str]:
    """One training run with the default logger (W&B, offline) and its console output; W&B
    not quiet, so that it prints its end-of-run table as online runs print their links."""
    run_dir = tmp_path_factory.mktemp("wandb") / "run"
    smoke = ["trainer=fast", "eval=fast", "callbacks=quiet", "model.iw_samples=4"]
    loud = "logger.wandb.settings.quiet=false"
    out = _cli("train", "model=vae", "dataset=moons", *smoke, loud, f"hydra.run.dir={run_dir}")
    return run_dir, out


def test_the_configured_wandb_logger_warns_nothing_and_prints_no_table(
    tmp_path, monkeypatch, capfd
):
    from hydra.utils import instantiate

    from genbench.reporting.loggers import finish_wandb
    from tests.conftest import compose_config

    monkeypatch.delenv("WANDB_SILENT", raising=False)  # what a user's console shows
    cfg = compose_config(["logger=wandb"], tmp_path)
    logger = instantiate(cfg.logger.wandb, id="quiet001")
    logger.log_metrics({"x": 1.0})
    finish_wandb([logger])
    out = "".join(capfd.readouterr())
    assert "Run data is saved locally" in out  # W&B still says where its files are
    assert "anonymous" not in out and "wandb: WARNING" not in out
    assert "Run summary" not in out and "Run history" not in out


def test_a_run_prints_no_wandb_warning_and_ends_with_its_completed_line(trained):
    run_dir, out = trained
    assert "anonymous" not in out and "wandb: WARNING" not in out
    assert "Run summary" in out  # W&B's table came first: the completed line is still last
    line = _last_line(out)
    assert " - completed: vae on moons, seed 0: " in line
    assert line.endswith(f"{run_dir}/results.json")
    # only the printing is quiet: the offline run holds the metrics
    (offline,) = (run_dir / "wandb").glob("offline-run-*")
    summary = read_offline_run(offline)["summary"]
    assert summary["nll_bpd"] == read_results(run_dir / "results.json")["metrics"]["nll_bpd"]


def test_a_reevaluation_keeps_what_it_replaces_and_wandb_agrees_with_results(trained, tmp_path):
    run_dir = tmp_path / "run"  # a copy: the fixture's run stays as trained
    shutil.copytree(trained[0], run_dir)
    before = read_results(run_dir / "results.json")
    trained_images = {f: (run_dir / f).read_bytes() for f in ("samples.png", "test_nll_bpd.npy")}
    (ckpt,) = (run_dir / "checkpoints").glob("best_step*.ckpt")
    # 50 samples and no bootstrap: fid_ci becomes null where training had an interval
    settings = ["eval=fast", "eval.num_samples=50", "eval.bootstrap_resamples=0"]
    out = _cli("eval", f"ckpt={ckpt}", *settings, f"hydra.run.dir={run_dir}")
    assert _last_line(out).startswith("completed: vae on moons, seed 0: ")

    after = read_results(run_dir / "results.json")
    m = after["metrics"]
    assert m["fidelity_num_samples"] == 50 and m["fid_ci"] is None
    assert before["metrics"]["fidelity_num_samples"] == 100 and before["metrics"]["fid_ci"]
    (old,) = after["history"]
    assert old["metrics"] == before["metrics"] and old["status"] == before["status"]
    assert old["eval_config"] == before["config"]["eval"] and old["versions"] == before["versions"]
    assert old["evaluated_at"] == before["created"] and old["replaced_at"] == after["reevaluated"]
    assert old["evaluated_checkpoint"] == before["evaluated_checkpoint"]
    # this evaluation wrote into the run's folder, over training's files: copies kept
    assert old["files"] == str(run_dir / "history" / "0")
    for name, data in trained_images.items():
        assert (Path(old["files"]) / name).read_bytes() == data

    # W&B: the run's two offline folders (training, re-evaluation) are one run that says what
    # results.json says, metric for metric
    folders = sorted((run_dir / "wandb").glob("offline-run-*"))
    runs = [read_offline_run(f) for f in folders]
    assert len(runs) == 2 and runs[0]["id"] == runs[1]["id"]
    merged = merge_runs(runs)
    assert merged["config"]["eval_config"] == after["eval_config"]
    assert merged["summary"]["reevaluated"] == after["reevaluated"]
    assert merged["summary"]["test/fid"] == m["fid"] and merged["summary"]["test/fid_ci"] is None
    (rec,), problems = collect(f"wandb-offline://{run_dir}")
    assert problems == []
    assert {k: rec["metrics"][k] for k in METRIC_KEYS} == {k: m[k] for k in METRIC_KEYS}

    # W&B online without a login (HOME without one): one line that says what was written
    home = tmp_path / "home"
    out = _cli("eval", f"ckpt={ckpt}", *settings, ok=False, WANDB_MODE="online", HOME=str(home))
    assert _last_line(out) == (
        f"genbench-eval: error: results.json is updated; its W&B run {runs[0]['id']} is not "
        "(No API key configured. Use `wandb login` to log in.); rerun with WANDB_MODE=offline "
        "or after `wandb login`"
    )
    assert len(read_results(run_dir / "results.json")["history"]) == 2


def test_committed_results_become_offline_wandb_runs_that_give_the_same_table(tmp_path):
    """genbench-table export_wandb=DIR on committed runs (two families, two seeds, the floor):
    the offline runs read back as the same records and table, with the columns a dashboard
    slices by; publishing again writes the same run ids."""
    source = tmp_path / "runs"
    for name in ("ebm_digits_seed0", "ebm_digits_seed1", "gan_digits_seed0", "floor"):
        shutil.copytree(RUNS / name, source / name)
    dest = tmp_path / "publish"
    out = _cli("table", f"source={source}", f"out_dir={tmp_path / 'table'}", f"export_wandb={dest}")
    assert f"4 offline W&B runs -> {dest / 'wandb'}" in out
    assert f"upload: wandb sync {dest / 'wandb'}/offline-run-*" in out
    assert "anonymous" not in out and "wandb: WARNING" not in out

    files, _ = collect(str(source))
    runs, problems = collect(f"wandb-offline://{dest}")
    assert problems == [] and len(runs) == 4
    key = lambda r: (r["family"], r["seed"])  # noqa: E731
    for a, b in zip(sorted(files, key=key), sorted(runs, key=key)):
        assert {k: a[k] for k in ("family", "model", "dataset", "seed", "status")} == {
            k: b[k] for k in ("family", "model", "dataset", "seed", "status")
        }
        assert {k: a["metrics"].get(k) for k in METRIC_KEYS} == b["metrics"]
    columns = ["family", "model", "dataset", "runs", "completed", "seeds", "nll_kind"]
    columns += [k for k in aggregate(files)[0] if k.endswith(("_mean", "_std"))]
    table = lambda recs: [{k: r.get(k) for k in columns} for r in aggregate(recs)]  # noqa: E731
    assert table(files) == table(runs)

    offline = {
        read_offline_run(f)["name"]: read_offline_run(f)
        for f in (dest / "wandb").glob("offline-run-*")
    }
    ebm = offline["ebm-digits-s1"]
    assert ebm["group"] == "digits_benchmark" and ebm["job_type"] == "train"
    cfg = ebm["config"]
    assert (
        cfg["family"] == "ebm" and cfg["budget_kind"] == "flops" and cfg["budget_value"] == 3.5e12
    )
    assert cfg["experiment_name"] == "digits_benchmark" and cfg["nll_kind"] == "estimate"
    ids = sorted(r["id"] for r in offline.values())
    again = [
        f"source={source}",
        f"out_dir={tmp_path / 'table'}",
        f"export_wandb={tmp_path / 'again'}",
    ]
    assert genbench_here("table", *again).returncode == 0  # the console is not the subject here
    again = sorted(
        read_offline_run(f)["id"] for f in (tmp_path / "again" / "wandb").glob("offline-run-*")
    )
    assert again == ids
