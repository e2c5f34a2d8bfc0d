"""make verify-benchmark: a committed run re-run from its results.json reproduces every metric,
and the re-run writes nothing into the original run's folder."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_a_run_reproduces_from_its_record_and_its_folder_is_left_alone(tmp_path, vae_run):
    original = vae_run  # conftest.VAE_RUN, trained by genbench-train; re-run here from its record
    before = {p: p.stat().st_mtime_ns for p in original.rglob("*") if p.is_file()}
    assert any(p.suffix == ".ckpt" for p in before)
    out = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "verify_benchmark.py"), str(tmp_path)]
        + ["--runs", "vae:0"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    assert "vae seed 0 (run): identical" in out.stdout
    after = {p: p.stat().st_mtime_ns for p in original.rglob("*") if p.is_file()}
    assert after == before  # the checkpoints of the original run were not rewritten


def test_timings_are_not_compared_at_any_depth_and_metrics_are():
    """A sampler curve's samples/s is a timing like the top-level ones (verify-benchmark failed
    flow matching and the EBM on it alone); its FID is a metric."""
    spec = importlib.util.spec_from_file_location(
        "verify", ROOT / "scripts" / "verify_benchmark.py"
    )
    verify = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(verify)
    committed = {
        "fid": 110.0,
        "train_time_s": 40.0,
        "curve": [{"fid": 150.0, "samples_per_s": 1280.0}],
    }
    slower = {
        "fid": 110.0,
        "train_time_s": 52.0,
        "curve": [{"fid": 150.0, "samples_per_s": 1398.0}],
    }
    assert verify.differences(committed, slower, 1e-6) == []
    moved = {**slower, "curve": [{"fid": 150.1, "samples_per_s": 1398.0}]}
    assert [d.split(":")[0] for d in verify.differences(committed, moved, 1e-6)] == ["curve"]


def test_metrics_added_after_a_record_are_listed_not_failed_and_a_null_one_is_compared():
    spec = importlib.util.spec_from_file_location(
        "verify", ROOT / "scripts" / "verify_benchmark.py"
    )
    verify = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(verify)
    committed = {"fid": 110.0, "class_kl": None}
    now = {"fid": 110.0, "class_kl": None, "hf_power_ratio": 1.07}
    assert verify.differences(committed, now, 1e-6) == []
    assert verify.new_keys(committed, now) == ["hf_power_ratio"]
    now["class_kl"] = 0.1  # null in the record, a value now: a change of behaviour
    assert [d.split(":")[0] for d in verify.differences(committed, now, 1e-6)] == ["class_kl"]
