"""Copy a benchmark folder's runs for evaluation elsewhere: each run's config, record and best
checkpoint reduced to the weights `genbench-eval ckpt=...` loads (the averaged weights in
`state_dict`; no optimiser states, live weights or EBM replay buffer), under the same names.

    python scripts/slim_checkpoints.py SOURCE DEST

SOURCE holds runs/<family>/ (scripts/gpu_mnist_benchmark.sh's layout); DEST gets
runs/<family>/{.hydra/config.yaml, results.json, checkpoints/best_step*.ckpt}. A lent GPU's call
returns these so that an evaluation the call had no time for can be run on another machine:
`genbench-eval ckpt=DEST/runs/<family>/checkpoints/best_step....ckpt` gives the metrics the full
checkpoint would (tests/evaluation/test_eval_cli.py checks a slim checkpoint evaluates alike).
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import torch


def slim(ckpt: Path, dest: Path) -> int:
    """Write `ckpt`'s state_dict alone to `dest`; returns the bytes written."""
    state = torch.load(ckpt, map_location="cpu", weights_only=True)["state_dict"]
    dest.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"state_dict": state}, dest)
    return dest.stat().st_size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("source", type=Path)
    parser.add_argument("dest", type=Path)
    args = parser.parse_args()
    for run in sorted(p for p in (args.source / "runs").iterdir() if p.is_dir()):
        best = sorted(run.glob("checkpoints/best_step*.ckpt"))
        if not best:
            print(f"{run.name}: no best checkpoint")
            continue
        out = args.dest / "runs" / run.name
        size = slim(best[-1], out / "checkpoints" / best[-1].name)
        for name in (".hydra/config.yaml", "results.json"):
            if (run / name).is_file():
                (out / name).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(run / name, out / name)
        print(f"{run.name}: {best[-1].name} -> {size / 1e6:.1f} MB")


if __name__ == "__main__":
    main()
