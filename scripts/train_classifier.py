"""Retrain a shipped feature classifier (genbench/assets/<dataset>_classifier.pt) from a seed.

Training is deterministic on CPU (one thread, seeded shuffling and augmentation) and uses the
training split only, with the epochs genbench uses when it trains one on first use, so this
reproduces the shipped weights bit for bit: `--check` retrains and compares the weights hash with
the shipped file instead of writing. Prints the test accuracy (must be >= 97% on digits, >= 99%
on MNIST).

    python scripts/train_classifier.py                 # writes genbench/assets/digits_classifier.pt
    python scripts/train_classifier.py --check         # retrain, compare hashes, write nothing
    python scripts/train_classifier.py --dataset mnist --root ../shared/data   # ~8 min here
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from hydra import compose, initialize_config_module
from hydra.utils import instantiate

from genbench.config import register
from genbench.evaluation.classifier import (
    ASSETS,
    classifier_accuracy,
    classifier_hash,
    default_epochs,
    load_classifier,
    save_classifier,
    train_classifier,
)

MIN_TEST_ACCURACY = {"digits": 0.97, "mnist": 0.99}


def datamodule(name: str, root: str):
    """The benchmark's split, as conf/dataset/<name>.yaml builds it (MNIST: files under `root`,
    the last 5000 training images are validation)."""
    register()
    with initialize_config_module("genbench.conf", version_base="1.3"):
        cfg = compose("train", overrides=[f"dataset={name}", f"paths.data_dir={root}"])
    return instantiate(cfg.dataset)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dataset", choices=sorted(MIN_TEST_ACCURACY), default="digits")
    p.add_argument("--root", default="../shared/data", help="MNIST: torchvision's layout under it")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, help="default: genbench/assets/<dataset>_classifier.pt")
    p.add_argument("--check", action="store_true", help="compare with --out, write nothing")
    args = p.parse_args(argv)
    args.out = args.out or ASSETS / f"{args.dataset}_classifier.pt"
    min_accuracy = MIN_TEST_ACCURACY[args.dataset]

    dm = datamodule(args.dataset, args.root)
    x, y = dm.split("train")
    start = time.perf_counter()
    ckpt = train_classifier(x, y, dm.spec.num_levels, seed=args.seed, epochs=default_epochs(len(x)))
    train_time_s = time.perf_counter() - start
    acc = classifier_accuracy(ckpt, *dm.split("test"))
    ckpt["meta"]["test_accuracy"] = acc
    digest = classifier_hash(ckpt)
    print(f"trained in {train_time_s:.1f} s; test accuracy {acc:.4f}; weights sha256 {digest}")
    if acc < min_accuracy:
        print(f"FAIL: test accuracy {acc:.4f} < {min_accuracy}", file=sys.stderr)
        return 1
    if args.check:
        shipped = classifier_hash(load_classifier(args.out))
        if shipped != digest:
            print(f"FAIL: {args.out} has weights sha256 {shipped}", file=sys.stderr)
            return 1
        print(f"OK: identical to {args.out}")
        return 0
    save_classifier(ckpt, args.out)
    print(f"wrote {args.out} ({args.out.stat().st_size} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
