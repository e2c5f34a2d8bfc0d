"""Whole sweeps that are interrupted and rerun: through submitit's local executor (the SLURM
launcher's code path) and under repeated SIGKILLs of the sweep process. The final results equal
an uninterrupted sweep's, and no job runs twice to completion."""

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

from genbench.config import sweep_subdir
from tests.commands import genbench_here
from tests.test_resume import TINY, _stable

ROOT = Path(__file__).resolve().parents[1]
# Two families x two seeds on digits: test_resume's tiny runs at 32 steps (checkpoint every 8).
SWEEP = [
    "model=vae,flow",
    "seed=0,1",
    *(o for o in TINY if not o.startswith("budget.steps=")),
    "budget.steps=32",
]
ENV = {**os.environ, "PYTHONPATH": str(ROOT), "HYDRA_FULL_ERROR": "1"}


def sweep_cmd(sweep_dir: Path, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "genbench.train",
        "-m",
        *SWEEP,
        *extra,
        f"hydra.sweep.dir={sweep_dir}",
    ]


def results(sweep_dir: Path) -> dict[tuple[str, int], dict]:
    out = {}
    for path in sweep_dir.rglob("results.json"):
        if "superseded" in path.parts:
            continue
        rec = json.loads(path.read_text())
        out[(rec["family"], rec["seed"])] = rec
    return out


def stable(rec: dict) -> dict:
    return _stable(rec["metrics"])


def launch(sweep_dir: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        sweep_cmd(sweep_dir, *extra), cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=900
    )


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> dict:
    sweep_dir = tmp_path_factory.mktemp("uninterrupted")
    assert launch(sweep_dir).returncode == 0
    recs = results(sweep_dir)
    assert len(recs) == 4 and all(r["status"] == "completed" for r in recs.values())
    return recs


def kill_seed() -> int:
    """The seed of the kill times: $GENBENCH_KILL_SEED replays a run, else a fresh one."""
    return int(os.environ.get("GENBENCH_KILL_SEED") or int.from_bytes(os.urandom(4), "little"))


@pytest.mark.slow
def test_sweep_killed_three_times_then_rerun_equals_an_uninterrupted_sweep(tmp_path, uninterrupted):
    """Three SIGKILLs of the whole sweep at times drawn from a printed seed (replay a failure
    with GENBENCH_KILL_SEED=<seed> make test-slow), then a rerun: every job's metrics equal the
    uninterrupted sweep's and no job runs twice to completion."""
    sweep_dir = tmp_path / "sweep"
    seed = kill_seed()
    rng = torch.Generator().manual_seed(seed)
    delays = [5 + 20 * float(torch.rand((), generator=rng)) for _ in range(3)]  # start-up ~5 s
    print(f"kill seed {seed}: SIGKILL after {', '.join(f'{d:.2f}' for d in delays)} s")
    finished: dict[tuple[str, int], str] = {}  # job -> its results.json "created" when first final
    for delay in delays:
        proc = subprocess.Popen(
            sweep_cmd(sweep_dir),
            cwd=ROOT,
            env=ENV,
            start_new_session=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(delay)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        for key, rec in results(sweep_dir).items():
            if rec["status"] == "completed":
                assert finished.setdefault(key, rec["created"]) == rec["created"], f"{key} reran"
    last = launch(sweep_dir)
    assert last.returncode == 0, last.stderr[-3000:]
    final = results(sweep_dir)
    assert set(final) == set(uninterrupted)
    for key, rec in final.items():
        assert rec["status"] == "completed"
        assert stable(rec) == stable(uninterrupted[key]), f"{key} (kill seed {seed})"
        if key in finished:  # completed before the last launch: skipped, not run again
            assert rec["created"] == finished[key], f"{key} ran twice to completion"


@pytest.mark.slow
def test_submitit_local_sweep_resumes_a_preempted_job(tmp_path, uninterrupted):
    """Hydra's submitit launcher (the SLURM path, with submitit's local executor): every job dies
    once mid-run (at step 13, like a preempted SLURM job), resumes from its step-8 checkpoint when
    the sweep is launched again, and ends equal to the basic launcher's uninterrupted sweep; a
    third launch skips them all."""
    sweep_dir = tmp_path / "sweep"
    crash = (
        "+callbacks.crash._target_=tests.crash.CrashOnce",
        "+callbacks.crash.step=13",
        "+callbacks.crash.marker=${paths.output_dir}/crashed",  # one marker per job
    )
    launcher = ["hydra/launcher=submitit_local", "hydra.launcher.timeout_min=15"]
    first = launch(sweep_dir, *launcher, *crash)
    assert first.returncode != 0  # every job crashed once at step 13
    after_first = results(sweep_dir)
    assert {r["status"] for r in after_first.values()} == {"failed"}
    second = launch(sweep_dir, *launcher, *crash)
    assert second.returncode == 0, second.stderr[-3000:]
    final = results(sweep_dir)
    assert set(final) == set(uninterrupted)
    for key, rec in final.items():
        assert rec["status"] == "completed" and rec.get("resumed_from"), key
        assert stable(rec) == stable(uninterrupted[key]), key
    created = {k: r["created"] for k, r in final.items()}
    third = launch(sweep_dir, *launcher, *crash)
    assert third.returncode == 0
    assert {k: r["created"] for k, r in results(sweep_dir).items()} == created  # all skipped


def test_a_moved_sweep_with_a_longer_seed_list_skips_its_finished_jobs(tmp_path):
    """A sweep's folder moved elsewhere, then rerun with another seed and another model: the
    finished job is found and skipped (job folders are named by model, data set, seed and other
    overrides, not by their position in the sweep; the config hash ignores where files go), the
    new jobs train, nothing is superseded."""
    tiny = [o for o in SWEEP if not o.startswith(("model=", "seed=", "budget.steps="))]
    # 8 steps and no NLL or sample metrics: which jobs run is the subject, not what they score
    tiny += ["budget.steps=8", "eval.nll=false", "eval.fidelity=false"]

    def sweep(folder: Path, *grid: str) -> dict:
        done = genbench_here("train", "-m", *grid, *tiny, f"hydra.sweep.dir={folder}")
        assert done.returncode == 0, done.stderr[-3000:]
        return results(folder)

    # The ARM and the GAN: the cheapest to train (the VAE's IWAE validations cost more)
    first = sweep(tmp_path / "a", "model=gan", "seed=1")
    (folder,) = (p.name for p in (tmp_path / "a").iterdir() if p.is_dir())
    assert folder.startswith("gan_digits_seed1_")  # then the hash of the (long) tiny overrides
    (tmp_path / "a").rename(tmp_path / "b")
    second = sweep(tmp_path / "b", "model=arm,gan", "seed=0,1")
    assert set(second) == {("gan", 0), ("gan", 1), ("arm", 0), ("arm", 1)}
    assert second[("gan", 1)]["created"] == first[("gan", 1)]["created"]  # skipped, not rerun
    assert all(r["status"] == "completed" for r in second.values())
    assert not list((tmp_path / "b").rglob("superseded"))


def test_sweep_subdir_names_a_job_by_its_overrides():
    assert sweep_subdir("arm_digits_seed0", "") == "arm_digits_seed0"
    assert sweep_subdir("arm_digits_seed0", "budget.flops=3e11,model.lr=0.001") == (
        "arm_digits_seed0_budget.flops=3e11,model.lr=0.001"
    )
    # Slashes and interpolations cannot make folders or reach the shell; long lists hash.
    marker = sweep_subdir("a", "+x.marker=${paths.output_dir}/f")
    assert marker == "a_+x.marker=--paths.output_dir--f"
    long = ",".join(f"model.k{i}={i}" for i in range(30))
    named = sweep_subdir("a", long)
    assert named.startswith("a_") and len(named) == 12 and named != sweep_subdir("a", long + "0")
