"""How a freshly made table compares with a committed one, cell by cell.

    python scripts/compare_tables.py NEW/table.csv COMMITTED/table.csv

For every row (family, model, data set) and metric in either table: "identical" (the same mean
to a relative 1e-9), "within" (the means differ by less than the two tables' spreads combined:
sqrt(std_a^2 + std_b^2 + within_a^2 + within_b^2), i.e. as two measurements of one quantity
would), or "DIFFERENT". Timings (train s, samples/s) are machine-dependent and only shown. Exit
status 0 in every case: the comparison informs, it does not gate.
"""

from __future__ import annotations

import csv
import math
import sys
from pathlib import Path

MACHINE_DEPENDENT = ("train_time_s", "samples_per_s")


def read(path: Path) -> dict[tuple[str, str, str], dict[str, str]]:
    with open(path, newline="") as f:
        return {(r["family"], r["model"], r["dataset"]): r for r in csv.DictReader(f)}


def _num(text: str | None) -> float | None:
    try:
        v = float(text) if text not in (None, "") else None
    except ValueError:
        return None
    return v if v is not None and math.isfinite(v) else None


def compare_cell(a: dict, b: dict, key: str) -> tuple[str, str]:
    """(verdict, detail) of metric `key` between rows a (new) and b (committed)."""
    ma, mb = _num(a.get(f"{key}_mean")), _num(b.get(f"{key}_mean"))
    if ma is None and mb is None:
        return "identical", "—"
    if ma is None or mb is None:
        return "DIFFERENT", f"{ma} vs {mb}"
    if math.isclose(ma, mb, rel_tol=1e-9, abs_tol=1e-12):
        return "identical", f"{ma:.6g}"
    spread = math.sqrt(
        sum((_num(r.get(f"{key}_{s}")) or 0.0) ** 2 for r in (a, b) for s in ("std", "within"))
    )
    verdict = "within" if abs(ma - mb) <= spread else "DIFFERENT"
    return verdict, f"{ma:.6g} vs {mb:.6g} (spread {spread:.3g})"


def main() -> int:
    if len(sys.argv) != 3:
        print(__doc__)
        return 2
    new_path, old_path = map(Path, sys.argv[1:])
    if not old_path.is_file():
        print(f"compare: no committed table at {old_path}: nothing to compare with")
        return 0
    new, old = read(new_path), read(old_path)
    keys = sorted(
        {
            k[: -len("_mean")]
            for r in (*new.values(), *old.values())
            for k in r
            if k.endswith("_mean")
        }
    )
    counts = {"identical": 0, "within": 0, "DIFFERENT": 0}
    print(f"{new_path} against the committed {old_path}:")
    for row in sorted(set(new) | set(old)):
        if row not in new or row not in old:
            print(f"  {' / '.join(row)}: only in the {'new' if row in new else 'committed'} table")
            continue
        for key in keys:
            verdict, detail = compare_cell(new[row], old[row], key)
            if key in MACHINE_DEPENDENT:
                print(f"  {row[1]:>14} {key:<16} (machine-dependent) {detail}")
                continue
            counts[verdict] += 1
            if verdict != "identical":
                print(f"  {row[1]:>14} {key:<16} {verdict:<9} {detail}")
    print("cells: " + ", ".join(f"{n} {v}" for v, n in counts.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
