"""The scaling report from run folders: scaling.md, scaling.json and the plots.

    python scripts/scaling_report.py --out DIR RUNS_DIR [RUNS_DIR ...]

Every results.json (and floor.json) under the folders is one point: its family, its training
budget (config.budget.flops), its seed. See genbench/reporting/scaling_fits.py for the fits.
"""

from __future__ import annotations

import argparse

from genbench.reporting.collect import collect
from genbench.reporting.scaling_writers import write_report


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("runs", nargs="+")
    p.add_argument("--out", required=True)
    p.add_argument("--resamples", type=int, default=200)
    a = p.parse_args()
    records, seen = [], set()
    for folder in a.runs:
        found, problems = collect(folder)
        for problem in problems:
            print(f"skipped: {problem}")
        for r in found:  # a run and its exported copy (a table's runs/) count once
            budget = ((r.get("config") or {}).get("budget") or {}).get("flops")
            key = (r["family"], r["model"], r["dataset"], r["seed"], budget)
            if key not in seen:
                seen.add(key)
                records.append(r)
    write_report(records, a.out, a.resamples)
    print(open(f"{a.out}/scaling.md").read())


if __name__ == "__main__":
    main()
