"""make verify-benchmark: a committed run re-run from its results.json reproduces every metric,
and the re-run writes nothing into the original run's folder."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from genbench.run import run

ROOT = Path(__file__).resolve().parents[1]


def test_a_run_reproduces_from_its_record_and_its_folder_is_left_alone(tmp_path, fast_cfg):
    cfg = fast_cfg("model=vae", "dataset=digits", "model.iw_samples=2", "eval.num_samples=64")
    original = Path(cfg.paths.output_dir)
    run(cfg)
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
