"""Reliability: resume after SIGKILL, determinism, divergence in sweeps, bad input, DDP."""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from genbench.cli import command_line_problem
from genbench.core.results import read_results
from genbench.run import INTERRUPTED, run
from genbench.train import interrupted_message
from tests.commands import genbench_here, smoke
from tests.conftest import VAE_RUN

ROOT = Path(__file__).resolve().parents[1]
TIMING_KEYS = {"samples_per_s", "sampling_time_s", "train_time_s", "eval_time_s"}
# A fixed-step budget whose checkpoints (every 15-step digits epoch) land on epoch ends.
RESUMABLE = [
    "dataset=digits",
    "budget=steps",
    "budget.steps=75",
    "budget.validations=2",
    "trainer.deterministic=true",
    "eval=fast",
    "logger=none",
    "callbacks=quiet",
]


def _cli(args: list[str]) -> subprocess.CompletedProcess:
    """genbench-train `args`, in this process (tests.commands.genbench_here)."""
    return genbench_here("train", *args)


def _stable(metrics: dict) -> dict:
    return {k: v for k, v in metrics.items() if k not in TIMING_KEYS}


# Slow: tests/test_resume.py checks every family's exact resume in the default suite, and a
# SIGKILL per family (slow) there too.
@pytest.mark.slow
@pytest.mark.parametrize("model", ["vae", "flow"])
def test_sigkill_then_resume_matches_uninterrupted_run(tmp_path, model):
    full, killed = tmp_path / "full", tmp_path / "killed"
    args = [f"model={model}", *RESUMABLE]
    done = _cli([*args, f"hydra.run.dir={full}"])
    assert done.returncode == 0, done.stderr[-2000:]

    cmd = [
        sys.executable,
        "-m",
        "genbench.train",
        *args,
        f"hydra.run.dir={killed}",
        "ckpt_path=last",
    ]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    last = killed / "checkpoints" / "last.ckpt"
    deadline, seen = time.time() + 300, set()
    while time.time() < deadline and proc.poll() is None:
        if last.exists():
            seen.add(last.stat().st_mtime_ns)
            if len(seen) >= 2:  # at least two epochs checkpointed: kill mid-training
                break
        time.sleep(0.05)
    assert proc.poll() is None, "training finished before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (killed / "results.json").exists()
    step_at_kill = torch.load(last, weights_only=False)["global_step"]
    assert 0 < step_at_kill < 75

    again = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr[-2000:]
    a, b = read_results(full / "results.json"), read_results(killed / "results.json")
    assert b["resumed_from"].endswith("last.ckpt")
    # bit-for-bit on CPU; on a mismatch, what tells a resume bug's cause apart (a 2026-12-06
    # test-slow run saw this VAE's sample metrics differ once, and pass when rerun)
    differ = sorted(k for k in _stable(a["metrics"]) if a["metrics"][k] != b["metrics"].get(k))
    assert not differ, {
        "differing keys": differ,
        "step at kill": step_at_kill,
        "evaluated": (a["evaluated_checkpoint"], b["evaluated_checkpoint"]),
        "selection": (a["metrics"].get("selection"), b["metrics"].get("selection")),
        "checkpoints": [
            sorted(p.name for p in (d / "checkpoints").iterdir()) for d in (full, killed)
        ],
    }
    assert _stable(a["metrics"]) == _stable(b["metrics"])
    assert a["metrics"]["train_steps"] == b["metrics"]["train_steps"] == 75


def test_same_seed_same_metrics(fast_cfg):
    first = run(fast_cfg("model=vae", "dataset=moons", "trainer.deterministic=true"))
    second = run(fast_cfg("model=vae", "dataset=moons", "trainer.deterministic=true"))
    assert _stable(first["metrics"]) == _stable(second["metrics"])
    other = run(fast_cfg("model=vae", "dataset=moons", "seed=1"))
    assert other["metrics"]["nll_bpd"] != first["metrics"]["nll_bpd"]


def test_divergence_stops_cleanly_and_sweep_goes_on(tmp_path):
    out = _cli(
        [
            "-m",
            "model=vae",
            "dataset=moons",
            "model.optimizer.lr=1e-3,1e30",
            *smoke(),
            f"hydra.sweep.dir={tmp_path}",
        ]
    )
    assert out.returncode == 0, out.stderr[-2000:]
    records = {
        json.loads(p.read_text())["config"]["model"]["optimizer"]["lr"]: json.loads(p.read_text())
        for p in tmp_path.rglob("results.json")
    }
    assert records[1e-3]["status"] == "completed"
    bad = records[1e30]
    assert bad["status"] == "diverged"
    assert "non-finite" in bad["error"] and isinstance(bad["diverged_at_step"], int)
    assert str(bad["diverged_at_step"]) in bad["error"]
    assert bad["metrics"]["nll_bpd"] is None  # no metrics from NaN weights


def _refusal(proc: subprocess.CompletedProcess) -> list[str]:
    """The command line refused before anything ran (genbench.cli): exit 2, stderr's lines."""
    assert proc.returncode == 2
    return proc.stderr.strip().splitlines()


def _one_line_error(proc: subprocess.CompletedProcess) -> str:
    assert proc.returncode != 0
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("genbench-train: error:")]
    assert len(lines) == 1, proc.stderr[-2000:]
    return lines[0]


def test_bad_inputs_give_one_line_errors_and_keep_what_was_written(tmp_path, vae_run):
    base, good = VAE_RUN, vae_run  # a finished run of these settings (conftest)
    results_before = (good / "results.json").read_bytes()
    last = good / "checkpoints" / "last.ckpt"
    ckpt_before = last.read_bytes()

    # The command line's check, as genbench-train runs it (exit 2, before a folder exists) ...
    lines = _refusal(_cli([*base, "trainer.max_step=5", f"hydra.run.dir={tmp_path}/a"]))
    assert (
        lines[0].startswith(
            "genbench-train: error: trainer.max_step is not a key of trainer (valid: "
        )
        and len(lines) == 1
    )
    assert not (tmp_path / "a").exists()  # refused before anything ran
    # ... and called here for two more mistakes (a process each would only repeat the above)
    assert command_line_problem("train", [*base, "budget.steps=abc"]) == (
        "budget.steps=abc: Value 'abc' of type 'str' could not be converted to Integer"
    )
    assert command_line_problem("train", [*base, "budget.kind=bogus"]) == (
        "budget.kind=bogus: Invalid value 'bogus', expected one of [flops, steps, time]"
    )

    msg = _one_line_error(
        _cli(
            [
                *base,
                "dataset=cifar10",
                f"dataset.root={tmp_path}/none",
                f"hydra.run.dir={tmp_path}/b",
            ]
        )
    )
    assert f"{tmp_path}/none" in msg and "download" in msg

    corrupt = tmp_path / "corrupt.ckpt"
    corrupt.write_bytes(ckpt_before[: len(ckpt_before) // 2])
    msg = _one_line_error(_cli([*base, f"ckpt_path={corrupt}", f"hydra.run.dir={good}"]))
    assert "corrupt" in msg and str(corrupt) in msg

    msg = _one_line_error(
        _cli([*base, "model.latent_dim=8", f"ckpt_path={last}", f"hydra.run.dir={good}"])
    )
    assert "does not match VAE" in msg and "mis-shaped" in msg

    assert (good / "results.json").read_bytes() == results_before
    assert last.read_bytes() == ckpt_before


def test_ctrl_c_gives_the_command_that_resumes_the_run_and_it_does(tmp_path):
    """Ctrl-C (SIGINT) mid-training of a run in its default, timestamped folder: exit status 130,
    one line on stderr ending in the command that resumes it (a plain rerun would start afresh in
    a new folder) and no traceback, results.json says interrupted; that command, run as printed,
    resumes the run in its folder and completes it."""
    cmd = [sys.executable, "-m", "genbench.train", "model=vae", "model.iw_samples=16", *RESUMABLE]
    # SIGINT as a terminal gives it: an ignored SIGINT is inherited across exec, and something
    # earlier in the suite leaves this process ignoring it (the run then finished with 0).
    proc = subprocess.Popen(
        cmd,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    runs, deadline = tmp_path / "outputs" / "runs", time.time() + 300
    while not list(runs.glob("*/checkpoints/last.ckpt")) and time.time() < deadline:
        assert proc.poll() is None, "training finished before it could be interrupted"
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 130, stderr[-2000:]
    assert "Traceback" not in stderr
    (out,) = runs.iterdir()
    line = stderr.strip().splitlines()[-1]
    assert line == f"genbench-train: {interrupted_message(line.split(' with: ', 1)[1])}"
    command = shlex.split(line.split(" with: ", 1)[1])
    assert command == [
        "genbench-train",
        "model=vae",
        "model.iw_samples=16",
        *RESUMABLE,
        f"hydra.run.dir={out}",
    ]
    rec = read_results(out / "results.json")
    assert rec["status"] == "failed" and rec["error"] == INTERRUPTED
    script = Path(sys.executable).parent / "genbench-train"  # the console script, as printed
    again = subprocess.run(
        [str(script), *command[1:]], cwd=tmp_path, capture_output=True, text=True, timeout=600
    )
    assert again.returncode == 0, again.stderr[-2000:]
    assert [p.name for p in runs.iterdir()] == [out.name]  # no new folder
    rec = read_results(out / "results.json")
    assert rec["status"] == "completed" and rec["resumed_from"].endswith("last.ckpt")
