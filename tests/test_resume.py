"""Resumable jobs and sweeps: every family resumes bit for bit from a mid-epoch checkpoint, a
rerun skips what is done, a changed config is never silently reused, checkpoints are
crash-safe and refuse to run code."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from genbench.core.results import read_results
from genbench.run import run
from tests.conftest import CONF_DIR, compose_config
from tests.crash import Interrupted

ROOT = Path(__file__).resolve().parents[1]
FAMILIES = sorted(p.stem for p in Path(CONF_DIR, "model").glob("*.yaml"))
TIMINGS = {"samples_per_s", "sampling_time_s", "train_time_s", "eval_time_s"}
# 24 optimiser steps on digits (15 batches an epoch), a step checkpoint every 8: the crash at
# step 13 resumes from step 8, in the middle of the first epoch. Small evaluation.
TINY = [
    "dataset=digits",
    "budget=steps",
    "budget.steps=24",
    "budget.validations=2",
    "eval=fast",
    "eval.nll_max_batches=1",
    "dataset.eval_batch_size=64",
    "logger=none",
    "callbacks=quiet",
    "callbacks.last_checkpoint.every_n_train_steps=8",
    "callbacks.last_checkpoint.every_n_epochs=null",
]


def _stable(metrics: dict) -> dict:
    return {k: v for k, v in metrics.items() if k not in TIMINGS}


def _cfg(tmp_path: Path, name: str, *overrides: str):
    return compose_config([*TINY, *overrides], tmp_path / name)


@pytest.mark.parametrize("model", FAMILIES)
def test_every_family_resumes_bit_for_bit_from_a_mid_epoch_checkpoint(tmp_path, model):
    full = run(_cfg(tmp_path, "full", f"model={model}"))
    crash = [
        f"model={model}",
        "+callbacks.crash._target_=tests.crash.CrashOnce",
        "+callbacks.crash.step=13",
        f"+callbacks.crash.marker={tmp_path / 'crashed'}",
    ]
    with pytest.raises(Interrupted):
        run(_cfg(tmp_path, "resumed", *crash))
    out = tmp_path / "resumed"
    assert read_results(out / "results.json")["status"] == "failed"
    assert torch.load(out / "checkpoints" / "last.ckpt", weights_only=True)["global_step"] == 8
    again = run(_cfg(tmp_path, "resumed", *crash))  # the same command, rerun
    assert again["resumed_from"].endswith("last.ckpt")
    assert _stable(again["metrics"]) == _stable(full["metrics"])


def test_rerun_skips_final_jobs_and_a_changed_config_is_a_new_job(tmp_path):
    first = run(_cfg(tmp_path, "job", "model=vae"))
    path = tmp_path / "job" / "results.json"
    stamp = path.stat().st_mtime_ns
    again = run(_cfg(tmp_path, "job", "model=vae"))
    assert again == read_results(path) and path.stat().st_mtime_ns == stamp  # skipped
    assert again["config_hash"] == first["config_hash"]
    changed = run(_cfg(tmp_path, "job", "model=vae", "model.lr=0.002"))
    assert changed["config_hash"] != first["config_hash"]
    (old,) = (tmp_path / "job" / "superseded").iterdir()  # the old job's files, kept
    assert read_results(old / "results.json")["config_hash"] == first["config_hash"]
    assert read_results(path)["config_hash"] == changed["config_hash"]


def test_unreadable_last_checkpoint_falls_back_to_the_previous_one(tmp_path, caplog):
    crash = [
        "model=vae",
        "+callbacks.crash._target_=tests.crash.CrashOnce",
        "+callbacks.crash.step=20",
        f"+callbacks.crash.marker={tmp_path / 'crashed'}",
    ]
    with pytest.raises(Interrupted):
        run(_cfg(tmp_path, "job", *crash))
    ck = tmp_path / "job" / "checkpoints"
    assert torch.load(ck / "last.prev.ckpt", weights_only=True)["global_step"] == 8
    data = (ck / "last.ckpt").read_bytes()
    (ck / "last.ckpt").write_bytes(data[: len(data) // 3])  # as if killed mid-write
    record = run(_cfg(tmp_path, "job", *crash))
    assert record["resumed_from"].endswith("last.prev.ckpt")
    assert "unreadable or corrupt" in caplog.text and "previous good checkpoint" in caplog.text
    full = run(_cfg(tmp_path, "full", "model=vae"))
    assert _stable(record["metrics"]) == _stable(full["metrics"])


EVIL = """
import os, torch
class Payload:
    def __reduce__(self):
        return (os.system, ("touch {marker}",))
torch.save({{"state_dict": {{}}, "x": Payload()}}, "{path}")
"""


def test_a_crafted_checkpoint_is_refused_in_one_line_without_running_code(tmp_path):
    evil, marker = tmp_path / "evil.ckpt", tmp_path / "pwned"
    subprocess.run([sys.executable, "-c", EVIL.format(marker=marker, path=evil)], check=True)
    out = subprocess.run(
        [sys.executable, "-m", "genbench.train", "model=vae", "trainer=fast", "logger=none"]
        + [f"ckpt_path={evil}", f"hydra.run.dir={tmp_path / 'run'}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 1
    errors = [ln for ln in out.stderr.splitlines() if ln.startswith("genbench-train: error:")]
    assert len(errors) == 1 and "posix.system" in errors[0] and "refused" in errors[0]
    assert not marker.exists()


@pytest.mark.slow
@pytest.mark.parametrize("model", FAMILIES)
def test_sigkill_at_a_random_step_then_rerun_matches_an_uninterrupted_run(tmp_path, model):
    args = [sys.executable, "-m", "genbench.train", f"model={model}", *TINY]
    args = [a for a in args if a != "budget.steps=24"] + ["budget.steps=48"]
    full = subprocess.run([*args, f"hydra.run.dir={tmp_path / 'full'}"], cwd=ROOT, timeout=900)
    assert full.returncode == 0
    killed = [*args, f"hydra.run.dir={tmp_path / 'killed'}"]
    proc = subprocess.Popen(killed, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    rng = torch.Generator().manual_seed(int(time.time()))
    target = int(torch.randint(1, 5, (), generator=rng)) * 8  # a random step checkpoint
    last = tmp_path / "killed" / "checkpoints" / "last.ckpt"
    deadline = time.time() + 600
    while time.time() < deadline and proc.poll() is None:
        try:
            if last.exists() and torch.load(last, weights_only=True)["global_step"] >= target:
                break
        except Exception:
            pass  # being replaced right now
        time.sleep(0.05)
    assert proc.poll() is None, "finished before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    rerun = subprocess.run(killed, cwd=ROOT, timeout=900)
    assert rerun.returncode == 0
    a = json.loads((tmp_path / "full" / "results.json").read_text())
    b = json.loads((tmp_path / "killed" / "results.json").read_text())
    assert b.get("resumed_from") and _stable(a["metrics"]) == _stable(b["metrics"])


def test_resume_adopts_the_best_checkpoint_on_disk_when_last_names_a_replaced_one(tmp_path):
    """Killed after a new best replaced the old best file but before last.ckpt recorded it: the
    restored state names a missing file; the callback adopts the best file on disk and its
    score, as the uninterrupted run has them (found by the sweep fault-injection test)."""
    from genbench.training.checkpoints import BestCheckpoint

    new_best = tmp_path / "best_step000016.ckpt"
    state = {"monitor": "val/nll_bpd", "best_model_path": str(new_best), "dirpath": str(tmp_path)}
    state |= {"best_model_score": torch.tensor(1.5), "best_k_models": {}, "kth_value": None}
    torch.save(
        {"state_dict": {}, "callbacks": {"BestCheckpoint{'monitor': 'auto'}": state}}, new_best
    )
    cb = BestCheckpoint(dirpath=str(tmp_path), filename="best_step{step:06d}")
    stale = dict(state, best_model_path=str(tmp_path / "best_step000008.ckpt"))
    stale["best_model_score"] = torch.tensor(1.9)
    cb.load_state_dict(stale)
    assert cb.best_model_path == str(new_best) and float(cb.best_model_score) == 1.5
    assert cb.best_k_models == {str(new_best): cb.best_model_score}
