"""What a new user meets: help pages, one-line errors, a failed status for an early failure,
the summary line, results in Python, and samples made elsewhere scored like a model's."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from genbench.core.results import read_results
from tests.commands import genbench as cli
from tests.commands import genbench_here
from tests.conftest import datamodule

RUNS = Path(__file__).resolve().parents[1] / "docs" / "benchmark" / "digits" / "runs"


@pytest.mark.parametrize("app", ["train", "eval", "table"])
def test_help_says_what_it_does_with_examples_and_the_groups_a_user_picks(app):
    out = cli(app, "--help")
    assert out.returncode == 0
    text = out.stdout
    assert text.startswith(f"genbench-{app}: ") and text.count(f"  genbench-{app} ") == 3
    assert "schema" not in text and "powered by Hydra" not in text
    if app == "train":
        assert "  model: arm, diffusion" in text and "callbacks: default, quiet" in text
        assert "ema, last_checkpoint" not in text  # single callbacks are not options to pick
    if app == "table":
        assert "model:" not in text and "budget:" not in text


def test_a_misspelt_key_names_the_nearest_valid_one():
    out = cli("train", "model=vae", "model.latnet_dim=32")
    assert out.returncode == 2
    assert out.stderr.strip() == (
        "genbench-train: error: model.latnet_dim is not a key of model; "
        "did you mean model.latent_dim?"
    )


def test_keys_are_checked_against_the_experiment_a_command_appends(capsys):
    """+experiment=... picks the data set: its keys are valid (make benchmark-mnist's
    dataset.root), and a misspelt one is named against that data set's keys."""
    from genbench.cli import check_command_line

    check_command_line("train", ["-m", "+experiment=mnist_cpu_benchmark", "dataset.root=x"])
    with pytest.raises(SystemExit) as stop:
        check_command_line("train", ["+experiment=mnist_cpu_benchmark", "dataset.rot=x"])
    assert stop.value.code == 2
    assert "did you mean dataset.root?" in capsys.readouterr().err


def test_eval_of_a_missing_checkpoint_is_one_line(tmp_path):
    out = cli("eval", f"ckpt={tmp_path / 'none.ckpt'}")
    assert out.returncode == 1
    lines = out.stderr.strip().splitlines()
    assert lines == [
        f"genbench-eval: error: checkpoint {str(tmp_path / 'none.ckpt')!r} does not exist"
    ]


def test_a_failure_before_the_model_exists_is_recorded_as_failed(tmp_path):
    """Missing MNIST files fail while the data module loads, before any model: results.json
    still says failed with the error, and train.log holds it too."""
    out = genbench_here(
        "train",
        "dataset=mnist",
        f"dataset.root={tmp_path / 'nowhere'}",
        "trainer=fast",
        "logger=none",
        f"hydra.run.dir={tmp_path / 'run'}",
    )
    assert out.returncode == 1
    (error,) = [ln for ln in out.stderr.splitlines() if ln.startswith("genbench-train: error:")]
    rec = read_results(tmp_path / "run" / "results.json")
    assert rec["status"] == "failed" and rec["error"].split(": ", 1)[1] in error
    assert "failed:" in (tmp_path / "run" / "train.log").read_text()


def test_a_run_ends_with_one_summary_line_and_readable_files(vae_run_once):
    run_dir, out = vae_run_once  # genbench-train of conftest.VAE_RUN
    (line,) = [ln for ln in out.stderr.splitlines() + out.stdout.splitlines() if "-> " in ln]
    assert "completed: vae on digits, seed 0: " in line and "bits/dim (bound)" in line
    assert "FID " in line and "samples/s" in line and line.endswith(f"{run_dir}/results.json")
    log = (run_dir / "train.log").read_text()
    assert "starting (seed 0, budget=steps, 20 steps, " in log  # the budget in force
    assert log.count("Seed set to") == 0 and log.count("GPU available") == 0
    assert "weights_only" not in log  # Lightning's line at every last.ckpt write
    assert (run_dir / "results.json").stat().st_mode & 0o044  # readable by group and others


def test_results_load_into_a_dataframe():
    """A folder of runs (here the committed digits benchmark's) is one row per run, the
    real-data floor's included."""
    from genbench import load_results

    df = load_results(str(RUNS))
    families = {"arm", "diffusion", "ebm", "flow", "flow_matching", "gan", "vae"}
    assert set(df["model"]) == families | {"train-split"} and len(df) == 22
    assert set(df[df["model"] != "train-split"]["status"]) == {"completed"}
    vae = df[df["model"] == "vae"].iloc[0]
    rec = read_results(Path(vae["path"]) / "results.json")
    assert vae["nll_bpd"] == rec["metrics"]["nll_bpd"]
    assert vae["fid_ci_low"] == rec["metrics"]["fid_ci"][0]
    assert np.isnan(df[df["model"] == "gan"].iloc[0]["nll_bpd"])  # no likelihood: missing


def test_samples_made_elsewhere_are_scored_like_a_models_and_real_data_lands_at_the_floor(
    tmp_path,
):
    """The training split, written as a .npz of 8-bit NHWC images (as other code bases release
    samples), scores what the real-data floor scores; a folder of PNGs of noise scores far
    worse; both become rows genbench-table shows as external."""
    from PIL import Image

    train = datamodule("digits").split("train")[0]
    eight_bit = (train.numpy() * 255 / 16).round().astype(np.uint8).transpose(0, 2, 3, 1)
    np.savez(tmp_path / "train.npz", arr_0=eight_bit)
    noise_dir = tmp_path / "noise"
    noise_dir.mkdir()
    rng = np.random.default_rng(0)
    for i in range(200):
        Image.fromarray(rng.integers(0, 256, (8, 8), dtype=np.uint8)).save(noise_dir / f"{i}.png")
    # 8-bit files on digits' 17 levels: said with levels=256, never guessed from the values
    common = ["dataset=digits", "eval=fast", "eval.num_samples=1000", "eval.memorisation=false"]
    common_samples = [*common, "levels=256"]
    for name, path in (("train", tmp_path / "train.npz"), ("noise", noise_dir)):
        out = genbench_here(
            "eval",
            f"samples={path}",
            f"name={name}",
            *common_samples,
            f"hydra.run.dir={tmp_path / name}",
        )
        assert out.returncode == 0, out.stderr[-2000:]
    out = genbench_here("eval", "floor=true", *common, f"hydra.run.dir={tmp_path / 'floor'}")
    assert out.returncode == 0, out.stderr[-2000:]
    real = read_results(tmp_path / "train" / "results.json")
    noise = read_results(tmp_path / "noise" / "results.json")
    floor = read_results(tmp_path / "floor" / "floor.json")
    assert real["family"] == "external" and real["model"] == "train"
    assert real["external"]["count"] == 1000 and len(real["external"]["sha256"]) == 64
    assert real["external"]["levels"] == 256 and real["external"]["array"] == "arr_0"
    assert real["external"]["mapping"] == "round(v * 16 / 255)"
    assert real["external"]["values"] == [0, 255] and noise["external"]["array"] is None
    # all 1000 training images, as the floor scores them (in another order): the same numbers
    for key in ("fid", "precision", "recall", "density", "coverage"):
        assert real["metrics"][key] == pytest.approx(floor["metrics"][key], rel=1e-6), key
    assert noise["metrics"]["fid"] > 10 * real["metrics"]["fid"]
    table = genbench_here("table", f"source={tmp_path}", f"out_dir={tmp_path / 'table'}")
    assert table.returncode == 0, table.stderr[-2000:]
    md = (tmp_path / "table" / "table.md").read_text()
    assert "| external | train |" in md and "| external | noise |" in md and "| real data |" in md
