"""The command line checked before Hydra runs anything: every mistake a user can make on it is
one line naming the key or value and what is valid, in seconds, before a run folder exists."""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import pytest

from genbench.cli import command_line_problem, resume_command
from tests.commands import genbench, genbench_here

ROOT = Path(__file__).resolve().parents[1]


def cli(app: str, *args: str, cwd: Path = ROOT, env: dict | None = None):
    return genbench(app, *args, cwd=cwd, env=env, timeout=300)


@pytest.mark.parametrize(
    "app, args, problem",
    [
        ("train", ["sed=1"], "sed is not a key of the config; did you mean seed?"),
        ("eval", ["sampels=x.npz"], "sampels is not a key of the config; did you mean samples?"),
        ("table", ["sourc=x"], "sourc is not a key of the config; did you mean source?"),
        ("train", ["experiment=digits_benchmark"], "experiment is added with a '+': +experiment="),
        ("train", ["seed=0,1"], "seed=0,1 is a sweep: add -m (a list: seed=[0,1]; "),
        ("train", ["budget.steps=abc"], "budget.steps=abc: Value 'abc' of type 'str' could not"),
        ("eval", ["data_root=~/x"], "cannot parse data_root=~/x (Hydra's override grammar); "),
    ],
)
def test_each_command_line_mistake_is_one_line_and_never_says_append(app, args, problem):
    """A misspelt top-level key names the nearest (Hydra said "To append to your config use
    +sed=1": a key nothing reads); Hydra's several-line refusals become one."""
    found = command_line_problem(app, args)
    assert found is not None and found.startswith(problem), found
    assert "To append" not in found and "\n" not in found


def test_a_missing_option_is_one_line_with_the_nearest_and_the_valid_ones():
    found = command_line_problem("train", ["model=vea"])
    assert found == (
        "model=vea is not an option; did you mean model=vae? "
        "(valid: arm, diffusion, ebm, flow, flow_matching, gan, vae)"
    )
    found = command_line_problem("train", ["model=vae,fow"], multirun=True)
    assert found.startswith("model=fow is not an option; did you mean model=flow?")
    assert command_line_problem("train", ["model=gan/hinge_sn"]) is None  # a variant


def test_a_users_own_option_through_the_searchpath_counts(tmp_path):
    """A model config in the user's own folder (hydra.searchpath) is an option like genbench's."""
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "mine.yaml").write_text("_target_: my.Model\nlr: 0.1\n")
    searchpath = f"hydra.searchpath=[file://{tmp_path}]"
    assert command_line_problem("train", ["model=mine", "model.lr=1", searchpath]) is None
    found = command_line_problem("train", ["model=mien", searchpath])
    assert found.startswith("model=mien is not an option; did you mean model=mine?")
    found = command_line_problem("train", ["model=mine", "model.lrr=1", searchpath])
    assert found == "model.lrr is not a key of model; did you mean model.lr?"


def test_a_budget_key_of_a_budget_not_in_force_names_the_group_to_add():
    """budget.flops=2e12 under the default budget=time trained 3 minutes of wall-clock."""
    found = command_line_problem("train", ["budget.flops=2e12"])
    assert found.startswith("budget.flops=2e+12 is set but budget.kind=time is in force")
    assert found.endswith("add budget=flops")
    found = command_line_problem("train", ["budget=flops", "budget.steps=50"])
    assert (
        found.startswith("budget.steps=50 is set but budget.kind=flops") and "budget=steps" in found
    )
    found = command_line_problem("train", ["budget.validations=4"])
    assert found.endswith("add budget=flops or budget=steps")
    assert command_line_problem("train", ["budget=flops", "budget.flops=2e12"]) is None
    assert command_line_problem("train", ["trainer=fast", "budget.steps=40"]) is None


@pytest.mark.parametrize(
    "args, problem",
    [
        (["seed=abc"], "seed='abc'; valid: an integer"),
        (["eval.num_samples=-5"], "eval.num_samples=-5; valid: an integer >= 2"),
        (["eval.ci_method=bca"], "eval.ci_method='bca'; valid: normal, percentile, basic"),
        (["budget=flops", "budget.flops=-1"], "budget.flops=-1.0; valid: a number >= 1"),
        (["budget.max_time=3min"], "budget.max_time='3min'; valid: DD:HH:MM:SS"),
        (["budget=flops", "budget.flops=null"], "budget.flops is null; budget=flops needs it"),
        (["dataset.batch_size=0"], "dataset.batch_size=0; valid: an integer >= 1"),
        (["hardware.threads=0"], "hardware.threads=0; valid: an integer >= 1"),
    ],
)
def test_a_value_no_run_can_use_is_refused_before_training(args, problem):
    assert command_line_problem("train", args) == problem


@pytest.mark.parametrize("value", ["abc", "0", "-2"])
def test_a_thread_count_from_the_environment_no_run_can_use_is_one_line(monkeypatch, value):
    """hardware=cpu reads $GENBENCH_THREADS (the suite's workers set 1)."""
    monkeypatch.setenv("GENBENCH_THREADS", value)
    want = f"GENBENCH_THREADS='{value}'; valid: an integer >= 1, or unset for 2"
    assert command_line_problem("train", ["hardware=cpu"]) == want
    monkeypatch.setenv("GENBENCH_THREADS", "3")
    assert command_line_problem("train", ["hardware=cpu"]) is None


def test_each_job_of_a_sweep_is_checked_and_named():
    """The experiment's own sweep (model=glob(*), seed=0,1,2) is composed value by value."""
    found = command_line_problem(
        "train", ["+experiment=digits_benchmark", "eval.num_samples=1"], multirun=True
    )
    assert found == "eval.num_samples=1; valid: an integer >= 2 (the sweep's job model=arm seed=0)"
    found = command_line_problem("train", ["model=vae,flow", "model.latent_dim=8"], multirun=True)
    assert found.startswith("model.latent_dim is not a key of model")
    assert found.endswith("(the sweep's job model=flow)")
    assert command_line_problem("train", ["+experiment=digits_benchmark"], multirun=True) is None


SWEEPS = sorted(
    f"+{p.parent.name}={p.stem}"
    for group in ("experiment", "hparams_search")
    for p in (ROOT / "conf" / group).glob("*.yaml")
)


@pytest.mark.parametrize("sweep", SWEEPS)
def test_every_shipped_sweep_passes_the_checks_job_by_job(sweep):
    """No false refusal of a benchmark (make benchmark runs +experiment=digits_benchmark)."""
    assert command_line_problem("train", [sweep], multirun=True) is None


@pytest.mark.parametrize(
    "bad, line",
    [
        ("eval.num_samples=-5", "eval.num_samples=-5; valid: an integer >= 2"),
        ("seed=abc", "seed='abc'; valid: an integer"),
        ("lr_scale=0", "lr_scale=0; valid: a number > 0 (1: the model's own rates)"),
    ],
)
def test_an_impossible_setting_fails_in_seconds_naming_the_key_and_leaves_no_folder(
    tmp_path, bad, line
):
    """eval.num_samples=-5 trained the whole run, then failed in torch.cat; seed=abc said
    `invalid literal for int()` and left an empty run folder behind."""
    start = time.perf_counter()
    out = cli("train", "model=vae", bad, f"hydra.run.dir={tmp_path / 'run'}")
    assert time.perf_counter() - start < 30  # the default budget trains for 3 minutes
    assert out.returncode == 2
    assert out.stderr.strip().splitlines() == [f"genbench-train: error: {line}"]
    assert not (tmp_path / "run").exists()


def test_the_table_and_the_report_end_in_one_line(tmp_path):
    out = genbench_here("table", f"source={tmp_path / 'nope'}")
    assert out.returncode == 1
    assert out.stderr.strip().splitlines() == [
        f"genbench-table: error: source={str(tmp_path / 'nope')!r} does not exist"
    ]
    spec = ROOT / "docs" / "benchmark" / "digits" / "wandb_report.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith("WANDB_API")}
    env.update(HOME=str(tmp_path), WANDB_CONFIG_DIR=str(tmp_path / "wandb"), NETRC=str(tmp_path))
    out = cli("report", str(spec), "--entity", "someone", env=env)  # nobody logged in
    assert out.returncode == 1
    (line,) = out.stderr.strip().splitlines()
    assert line.startswith("genbench-report: error: W&B: ") and "wandb login" in line


def test_a_corrupt_npz_of_samples_is_one_line_naming_the_file(tmp_path):
    from genbench.evaluation.external import load_samples
    from tests.conftest import datamodule

    np.savez(tmp_path / "good.npz", samples=np.zeros((10, 8, 8), dtype=np.uint8))
    whole = (tmp_path / "good.npz").read_bytes()
    broken = {
        "noise.npz": np.random.default_rng(0).bytes(4000),  # numpy: "pickled data"
        "truncated.npz": whole[: len(whole) // 2],
        "truncated.npy": b"\x93NUMPY\x01\x00",
    }
    spec = datamodule("digits").spec
    for name, data in broken.items():
        (tmp_path / name).write_bytes(data)
        with pytest.raises(ValueError) as e:
            load_samples(tmp_path / name, spec)
        assert str(e.value).startswith(f"samples={str(tmp_path / name)!r} is not a readable")
        assert "\n" not in str(e.value) and "pickle" not in str(e.value)


def test_the_resume_command_names_the_folder_and_leaves_ckpt_path_at_auto():
    argv = ["model=vae", "ckpt_path=null", "hydra.run.dir=old", "eval.nll=false"]
    assert resume_command("train", argv, "/runs/a b", sweep=False) == (
        "genbench-train model=vae eval.nll=false 'hydra.run.dir=/runs/a b'"
    )
    argv = ["-m", "model=vae,flow", "hydra.sweep.dir=old"]
    assert resume_command("train", argv, "/sweeps/s", sweep=True) == (
        "genbench-train -m model=vae,flow hydra.sweep.dir=/sweeps/s"
    )
