"""Retrain the digits feature classifier (genbench/assets/digits_classifier.pt) from a seed.

Training is deterministic on CPU (one thread, seeded shuffling and augmentation), so this
reproduces the shipped weights bit for bit: `--check` retrains and compares the weights hash with
the shipped file instead of writing. Prints the test accuracy (must be >= 97% on the digits test
split).

    python scripts/train_digits_classifier.py          # writes genbench/assets/digits_classifier.pt
    python scripts/train_digits_classifier.py --check  # retrain, compare hashes, write nothing
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from genbench.data import DigitsDataModule
from genbench.evaluation.extractors import (
    ASSETS,
    classifier_accuracy,
    classifier_hash,
    load_classifier,
    save_classifier,
    train_classifier,
)

MIN_TEST_ACCURACY = 0.97


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=ASSETS / "digits_classifier.pt")
    p.add_argument("--check", action="store_true", help="compare with --out, write nothing")
    args = p.parse_args(argv)

    dm = DigitsDataModule()
    start = time.perf_counter()
    ckpt = train_classifier(*dm.split("train"), dm.spec.num_levels, seed=args.seed)
    train_time_s = time.perf_counter() - start
    acc = classifier_accuracy(ckpt, *dm.split("test"))
    ckpt["meta"]["test_accuracy"] = acc
    digest = classifier_hash(ckpt)
    print(f"trained in {train_time_s:.1f} s; test accuracy {acc:.4f}; weights sha256 {digest}")
    if acc < MIN_TEST_ACCURACY:
        print(f"FAIL: test accuracy {acc:.4f} < {MIN_TEST_ACCURACY}", file=sys.stderr)
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
