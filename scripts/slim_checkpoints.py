"""Copy a benchmark folder's runs for evaluation elsewhere: each run's config, record and best
checkpoint reduced to the weights `genbench-eval ckpt=...` loads (the averaged weights in
`state_dict`; no optimiser states, live weights or EBM replay buffer), under the same names.

    python scripts/slim_checkpoints.py SOURCE DEST

Every run folder under SOURCE (a folder with .hydra/config.yaml, at any depth: a sweep, or
scripts/gpu_mnist_benchmark.sh's runs/<family>/) is copied to the same place under DEST with
.hydra/config.yaml, results.json and the checkpoint its results.json names as evaluated (else
its newest best_step*.ckpt). A lent GPU's call
returns these so that an evaluation the call had no time for can be run on another machine:
`genbench-eval ckpt=DEST/runs/<family>/checkpoints/best_step....ckpt` gives the metrics the full
checkpoint would (tests/evaluation/test_eval_cli.py checks a slim checkpoint evaluates alike).
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import torch


def slim(ckpt: Path, dest: Path) -> int:
    """Write `ckpt`'s state_dict alone to `dest`; returns the bytes written."""
    state = torch.load(ckpt, map_location="cpu", weights_only=True)["state_dict"]
    dest.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"state_dict": state}, dest)
    return dest.stat().st_size


def checkpoint_of(run: Path) -> Path | None:
    """The checkpoint the run evaluated (results.json's evaluated_checkpoint), else its best."""
    results = run / "results.json"
    if results.is_file():
        name = json.loads(results.read_text()).get("evaluated_checkpoint")
        if name and (run / "checkpoints" / name).is_file():
            return run / "checkpoints" / name
    best = sorted(run.glob("checkpoints/best_step*.ckpt"))
    return best[-1] if best else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("source", type=Path)
    parser.add_argument("dest", type=Path)
    args = parser.parse_args()
    runs = sorted(p.parent.parent for p in args.source.rglob(".hydra/config.yaml"))
    if not runs:
        raise SystemExit(f"no run folders (with .hydra/config.yaml) under {args.source}")
    for run in runs:
        ckpt = checkpoint_of(run)
        if ckpt is None:
            print(f"{run}: no evaluated or best checkpoint")
            continue
        out = args.dest / run.relative_to(args.source)
        size = slim(ckpt, out / "checkpoints" / ckpt.name)
        for name in (".hydra/config.yaml", "results.json"):
            if (run / name).is_file():
                (out / name).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(run / name, out / name)
        print(f"{run.relative_to(args.source)}: {ckpt.name} -> {size / 1e6:.1f} MB")


if __name__ == "__main__":
    main()
