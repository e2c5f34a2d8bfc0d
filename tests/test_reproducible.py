"""The benchmark sweep twice gives the same metrics in every results.json, bit for bit on CPU
(timings aside): a tiny two-family, two-seed version of `make benchmark`."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TIMINGS = {"train_time_s", "eval_time_s", "samples_per_s", "sampling_time_s"}


def sweep(out: Path) -> dict[tuple[str, int], dict]:
    cmd = [
        sys.executable,
        "-m",
        "genbench.train",
        "-m",
        "+experiment=digits_benchmark",
        "model=vae,flow",
        "seed=0,1",
        "budget.flops=2e9",
        "budget.validations=2",
        "eval=fast",
        "logger=none",
        "callbacks=quiet",
        f"hydra.sweep.dir={out}",
    ]
    env = {**os.environ, "HYDRA_FULL_ERROR": "1"}
    subprocess.run(cmd, cwd=ROOT, check=True, env=env, capture_output=True, timeout=600)
    records = {}
    for path in out.rglob("results.json"):
        rec = json.loads(path.read_text())
        records[(rec["family"], rec["seed"])] = rec["metrics"]
    return records


def same(a, b) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return a == b or (math.isnan(a) and math.isnan(b))
    return a == b


def test_benchmark_sweep_is_bit_for_bit_reproducible(tmp_path):
    first, second = sweep(tmp_path / "a"), sweep(tmp_path / "b")
    assert set(first) == {("vae", 0), ("vae", 1), ("flow", 0), ("flow", 1)} == set(second)
    assert first[("vae", 0)]["nll_bpd"] != first[("vae", 1)]["nll_bpd"]  # seeds differ
    for key, metrics in first.items():
        assert metrics["train_flops"] > 0 and metrics["fid"] > 0
        diff = {
            k: (v, second[key][k])
            for k, v in metrics.items()
            if k not in TIMINGS and not same(v, second[key][k])
        }
        assert diff == {}, f"{key}: {diff}"
