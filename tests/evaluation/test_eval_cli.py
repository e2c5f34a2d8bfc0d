"""genbench-eval: re-evaluate a trained run's checkpoint, and the real-data floor."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from omegaconf import OmegaConf

from genbench.core.results import read_results
from genbench.core.settings import EvalSettings
from genbench.run import run
from tests.commands import genbench_here as genbench

ROOT = Path(__file__).resolve().parents[2]


def genbench_eval(*overrides: str) -> subprocess.CompletedProcess:
    out = genbench("eval", *overrides)
    assert out.returncode == 0, out.stderr[-3000:]
    return out


def test_eval_ckpt_updates_results_keeping_other_metrics(vae_run):
    """genbench-eval into the run's own folder (samples.png beside its results.json): the sample
    metrics are recomputed, what it was not asked for is kept, and the run's config, which the
    evaluation reads, is not overwritten by the evaluation's own."""
    run_dir = vae_run
    before = read_results(run_dir / "results.json")["metrics"]
    assert before["fidelity_num_samples"] == 64 and math.isfinite(before["fid"])
    config = (run_dir / ".hydra" / "config.yaml").read_text()
    grid_written = (run_dir / "samples.png").stat().st_mtime_ns  # by the training run
    ckpt = run_dir / "checkpoints" / "last.ckpt"
    genbench_eval(
        f"ckpt={ckpt}",
        "eval=fast",
        "eval.nll=false",
        "eval.num_samples=200",
        f"hydra.run.dir={run_dir}",
    )
    after = read_results(run_dir / "results.json")
    m = after["metrics"]
    assert after["evaluated_checkpoint"] == "last.ckpt" and after["status"] == "completed"
    assert m["fidelity_num_samples"] == 200 and m["fid"] != before["fid"]
    for key in ("nll_bpd", "nll_bpd_stderr", "train_time_s", "train_steps"):  # not recomputed
        assert m[key] == before[key]
    assert (run_dir / ".hydra" / "config.yaml").read_text() == config
    assert (run_dir / "samples.png").stat().st_mtime_ns > grid_written


def test_eval_floor_writes_train_vs_test_metrics(tmp_path):
    genbench_eval("floor=true", "dataset=moons", "eval=fast", f"hydra.run.dir={tmp_path}")
    floor = read_results(tmp_path / "floor.json")
    m = floor["metrics"]
    assert floor["family"] == "real-data" and floor["dataset"] == "moons"
    assert m["fidelity_num_samples"] == 100 and m["fidelity_extractor"] == "coords"
    assert 0 <= m["fid"] < 0.1 and m["is_mean"] is None and m["nll_bpd"] is None
    assert 0.5 < m["precision"] <= 1 and 0 < m["recall"] <= 1
    assert m["fid_ci"][0] < m["fid_ci"][1] and m["kid_ci"][0] < m["kid_ci"][1]
    assert 0.5 < m["density"] < 1.5 and 0.5 < m["coverage"] <= 1
    # validation points are fresh draws: no copying, authentic
    assert m["nn_copy_fraction"] < 0.1 and abs(m["ct_score"]) < 3 and m["authenticity"] > 0.3
    assert m["nn_copy_fraction_pixels"] is None  # points: no pixel space
    assert floor["floor"]["memorisation_generated"] == "the first 100 validation examples"
    assert m["memorisation_num_samples"] == 100
    assert (tmp_path / "nearest_neighbours.png").exists()


def test_eval_of_an_unfinished_run_keeps_it_failed(vae_run):
    """Evaluating a checkpoint of a run killed during training scores it but does not call the
    run completed (a rerun of its sweep must resume it, not skip it)."""
    from genbench.core.results import write_results
    from genbench.evaluation.reevaluate import reevaluate_checkpoint

    run_dir = vae_run
    cfg = OmegaConf.load(run_dir / ".hydra" / "config.yaml")
    record = read_results(run_dir / "results.json")
    # what a run killed mid-training leaves: status failed, no train_steps
    record.update(status="failed", error="Received SIGTERM")
    record["metrics"].update(train_steps=None, nll_bpd=None)
    write_results(run_dir / "results.json", record)

    settings = EvalSettings.from_mapping({**cfg.eval, "fidelity": False})
    after = reevaluate_checkpoint(run_dir / "checkpoints" / "last.ckpt", settings)
    assert after["status"] == "failed" and after["error"] == "Received SIGTERM"
    assert after["metrics"]["nll_bpd"] > 0  # scored all the same
    assert read_results(run_dir / "results.json")["status"] == "failed"


def test_eval_of_the_evaluated_checkpoint_reproduces_the_run(vae_run):
    """Stochastic estimators (the VAE's sampled latents) draw from generators seeded by the
    evaluation, so genbench-eval of the checkpoint a run evaluated gives the run's NLL exactly,
    whatever the global RNG did before."""
    import torch

    from genbench.evaluation.reevaluate import reevaluate_checkpoint

    run_dir = vae_run
    cfg = OmegaConf.load(run_dir / ".hydra" / "config.yaml")
    before = read_results(run_dir / "results.json")
    torch.manual_seed(12345)
    torch.rand(1000)
    ckpt = run_dir / "checkpoints" / before["evaluated_checkpoint"]
    if not ckpt.exists():  # "last": the run's final weights, saved as last.ckpt
        ckpt = run_dir / "checkpoints" / "last.ckpt"
    after = reevaluate_checkpoint(ckpt, EvalSettings.from_mapping({**cfg.eval, "fidelity": False}))
    assert after["metrics"]["nll_bpd"] == before["metrics"]["nll_bpd"]
    assert after["metrics"]["nll_bpd_stderr"] == before["metrics"]["nll_bpd_stderr"]


def test_eval_with_an_estimator_setting_changes_only_the_nll_and_records_it(vae_run, tmp_path):
    """+model.iw_samples=64 at evaluation: the VAE scored by the ELBO (1 sample) is scored by
    IWAE-64, which is tighter (lower) on average; the change is recorded, every sample metric is
    the run's own to the bit, and a key the run's model lacks is refused in one line."""
    run_dir = vae_run
    before = read_results(run_dir / "results.json")["metrics"]
    assert read_results(run_dir / "results.json")["config"]["model"]["iw_samples"] == 1
    ckpt = run_dir / "checkpoints" / "last.ckpt"
    genbench_eval(
        f"ckpt={ckpt}",
        "eval=fast",
        "eval.num_samples=64",
        "eval.nll_examples=256",  # the run's 256 test images
        "+model.iw_samples=64",
        f"hydra.run.dir={tmp_path / 'eval'}",
    )
    after = read_results(run_dir / "results.json")
    elbo = np.load(run_dir / "test_nll_bpd.npy")
    iwae = np.load(tmp_path / "eval" / "test_nll_bpd.npy")
    diff = iwae - elbo  # the same test images: a paired difference
    assert diff.mean() < -3 * diff.std() / np.sqrt(len(diff))  # IWAE-64 is tighter (about 8 se)
    assert after["eval_model_changes"] == {"iw_samples": 64}
    m = after["metrics"]
    assert m["nll_bpd"] == pytest.approx(float(iwae.mean()), rel=1e-9)
    for key in ("fid", "fid_ci", "kid_mean", "precision", "recall", "coverage", "ct_score"):
        assert m[key] == before[key], key
    bad = [f"ckpt={ckpt}", "eval=fast", "+model.iw_sample=8", f"hydra.run.dir={tmp_path / 'bad'}"]
    out = genbench("eval", *bad)
    assert out.returncode != 0
    (line,) = out.stderr.strip().splitlines()
    assert "model.iw_sample is not a key of the run's model; valid:" in line
    assert "iw_samples" in line


def test_a_cli_run_is_reevaluated_with_todays_default_for_a_key_it_predates(vae_run, tmp_path):
    """A run trained before a model key existed (removed here from its recorded config) is
    built with today's default for it, recorded in eval_model_changes. Today's config comes from
    the model and data set Hydra recorded for the run: its config.yaml's model_name, read under
    genbench-eval, said None, and the key stayed missing."""
    run_dir = vae_run
    config = run_dir / ".hydra" / "config.yaml"
    assert "  kl_warmup_steps: 0\n" in config.read_text()
    config.write_text(config.read_text().replace("  kl_warmup_steps: 0\n", ""))
    ckpt = run_dir / "checkpoints" / "last.ckpt"
    genbench_eval(f"ckpt={ckpt}", "eval=fast", "eval.nll=false", f"hydra.run.dir={tmp_path / 'e'}")
    after = read_results(run_dir / "results.json")
    assert after["eval_model_changes"] == {"kl_warmup_steps": 0}


SHARED_MNIST = ROOT.parent / "shared" / "data" / "MNIST" / "raw"


@pytest.mark.skipif(
    not SHARED_MNIST.is_dir(),
    reason=f"the real MNIST files are not at {SHARED_MNIST} (a clone without ../shared)",
)
def test_a_run_moved_to_another_machine_is_evaluated_from_its_slim_checkpoint(fast_cfg, tmp_path):
    """A lent GPU's call returns each run's config and its best weights alone
    (scripts/slim_checkpoints.py), and the data lives elsewhere on the machine that evaluates
    them: `genbench-eval ckpt=<slim> data_root=<here>` gives the metrics the full checkpoint
    gives where the run was trained (here: the run's own evaluation, which genbench-eval of the
    full checkpoint reproduces, test_eval_of_the_evaluated_checkpoint_reproduces_the_run);
    without data_root the missing data is named in one line."""
    trained_at = tmp_path / "gpu_machine_data"
    (trained_at / "MNIST").mkdir(parents=True)
    (trained_at / "MNIST" / "raw").symlink_to(SHARED_MNIST)
    small = ["eval.nll_examples=256", "eval.num_samples=64", "eval.max_reference_samples=512"]
    cfg = fast_cfg(
        "model=vae",
        "dataset=mnist",
        f"dataset.root={trained_at}",
        "dataset.num_train=256",
        "dataset.batch_size=16",  # MNIST's VAE: ~1 s a step at 128 on two cores
        "model.iw_samples=2",
        "eval.max_train_samples=512",
        *small,
    )
    run_dir = Path(cfg.paths.output_dir)
    expected = run(cfg)["metrics"]  # the run's own evaluation of its evaluated checkpoint
    (run_dir / ".hydra").mkdir()
    OmegaConf.save(cfg, run_dir / ".hydra" / "config.yaml")

    moved = tmp_path / "elsewhere"
    subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "slim_checkpoints.py"), str(tmp_path), str(moved)],
        check=True,
        capture_output=True,
    )
    (slim,) = (moved / "run" / "checkpoints").glob("*.ckpt")
    assert slim.stat().st_size < (run_dir / "checkpoints" / "last.ckpt").stat().st_size / 2
    (trained_at / "MNIST" / "raw").unlink()  # the data is not where the run read it
    here = tmp_path / "cpu_machine_data"
    (here / "MNIST").mkdir(parents=True)
    (here / "MNIST" / "raw").symlink_to(SHARED_MNIST)
    args = [f"ckpt={slim}", "eval=fast", "eval.max_train_samples=512", *small]
    missing = genbench("eval", *args, f"hydra.run.dir={tmp_path / 'x'}")
    assert missing.returncode != 0 and len(missing.stderr.strip().splitlines()) == 1
    assert str(trained_at) in missing.stderr
    genbench_eval(*args, f"data_root={here}", f"hydra.run.dir={tmp_path / 'slim_eval'}")
    got = read_results(moved / "run" / "results.json")["metrics"]
    timings = {"eval_time_s", "sampling_time_s", "samples_per_s"}
    assert {k: v for k, v in got.items() if k not in timings} == {
        k: v for k, v in expected.items() if k not in timings
    }
