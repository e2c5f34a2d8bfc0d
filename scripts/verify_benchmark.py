"""Re-run committed benchmark runs from their own results.json and compare every metric.

    python scripts/verify_benchmark.py docs/benchmark/digits/runs [--runs arm:1,gan:1] [--rel 1e-6]

Each chosen run is trained and evaluated again at this checkout, from the resolved config its
results.json records (the same model, data, budget, seed, callbacks and evaluation settings),
in a temporary folder; then every metric is compared with the committed one (numbers to a
relative `--rel`, everything else exactly; timings, which depend on the machine, are shown, not
compared). This is how a reader checks that the committed table is what the code produces.
Exit status 1 when any metric differs. `make verify-benchmark` runs it on the digits table.
"""

from __future__ import annotations

import argparse
import logging
import math
import sys
import tempfile
import time
from pathlib import Path

from omegaconf import OmegaConf

from genbench.core.results import read_results
from genbench.jobs import config_hash
from genbench.run import run

TIMINGS = {"samples_per_s", "sampling_time_s", "train_time_s", "eval_time_s"}
DEFAULT_RUNS = "arm:1,vae:1,gan:1,flow_matching:1,ebm:1"


def committed_runs(folder: Path) -> dict[tuple[str, int], Path]:
    """(model, seed) -> results.json of every run under `folder`."""
    out = {}
    for path in sorted(folder.glob("*/results.json")):
        rec = read_results(path)
        out[(rec["model"], int(rec["seed"]))] = path
    return out


def differences(committed: dict, now: dict, rel: float) -> list[str]:
    """Metric keys whose values differ (numbers beyond `rel`, anything else at all). A key the
    committed record does not have at all is a metric added after it was made: not compared
    (new_keys lists them); one it has as null is compared like any other."""
    out = []
    for key in sorted(set(committed) | set(now)):
        if key in TIMINGS or key not in committed:
            continue
        a, b = committed.get(key), now.get(key)
        if not _same(a, b, rel):
            out.append(f"{key}: committed {a!r}, now {b!r}")
    return out


def new_keys(committed: dict, now: dict) -> list[str]:
    """Metric keys the run now writes that the committed record predates."""
    return sorted(k for k in now if k not in committed and now[k] is not None)


def _same(a, b, rel: float) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a == b or math.isclose(a, b, rel_tol=rel, abs_tol=0.0)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y, rel) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):  # timings nested in curves: not compared
        same = (_same(a[k], b[k], rel) for k in a if k not in TIMINGS)
        return a.keys() == b.keys() and all(same)
    return a == b


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("runs_dir", type=Path, help="a table's runs folder (genbench-table export_runs)")
    p.add_argument("--runs", default=DEFAULT_RUNS, help="model:seed,... (default %(default)s)")
    p.add_argument("--rel", type=float, default=1e-6, help="relative tolerance of numbers")
    args = p.parse_args()
    # One line per run from this script; Lightning's per-run lines (seed, accelerator, tips) only
    # when they are warnings (genbench's run routes them through this handler).
    handler = logging.StreamHandler()
    handler.setLevel(logging.WARNING)
    logging.basicConfig(handlers=[handler], format="%(levelname)s %(name)s: %(message)s")
    available = committed_runs(args.runs_dir)
    chosen = []
    for item in args.runs.split(","):
        model, seed = item.rsplit(":", 1)
        if (model, int(seed)) not in available:
            valid = ", ".join(f"{m}:{s}" for m, s in sorted(available))
            print(f"verify-benchmark: no run {item!r} in {args.runs_dir}; valid: {valid}")
            return 2
        chosen.append(available[(model, int(seed))])
    failures = 0
    with tempfile.TemporaryDirectory(prefix="verify-") as tmp:
        for path in chosen:
            rec = read_results(path)
            # The recorded config is resolved: its checkpoint folders name the original run's
            # folder. Every path under it moves to the temporary folder, so the original run's
            # files are never written (they were, before: checkpoints landed in the sweep).
            original = str(rec["config"]["paths"]["output_dir"])
            moved = str(Path(tmp) / path.parent.name)
            text = OmegaConf.to_yaml(OmegaConf.create(rec["config"]))
            cfg = OmegaConf.create(text.replace(original, moved))
            cfg.paths.output_dir = moved
            cfg.ckpt_path = None
            cfg.logger = None
            start = time.perf_counter()
            now = run(cfg)
            took = time.perf_counter() - start
            diff = differences(rec["metrics"], now["metrics"], args.rel)
            recorded = OmegaConf.create(rec["config"])
            if rec.get("config_hash") and config_hash(recorded) != rec["config_hash"]:
                diff.insert(0, "config hash differs: the recorded config did not round-trip")
            status = "identical" if not diff else f"{len(diff)} metrics differ"
            print(f"{rec['model']} seed {rec['seed']} ({path.parent.name}): {status}, {took:.0f} s")
            for line in diff:
                print(f"    {line}")
            added = new_keys(rec["metrics"], now["metrics"])
            if added:
                print(f"    not in the committed record (metrics added since): {', '.join(added)}")
            failures += bool(diff)
    print(f"verify-benchmark: {len(chosen) - failures} of {len(chosen)} runs reproduce")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
