"""docs/claims.md: the lesson's claims, each with its verdict on the committed runs (issue 33).

    python scripts/claims_report.py --out docs/claims.md

Reads docs/benchmark/{digits,scaling,mnist,mnist-gpu}/runs from the repository root; trains
nothing. See genbench/reporting/claims.py for the claims and verdicts.py for the rule.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from genbench.reporting.claims_report import report


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", required=True, help="the markdown file to write")
    p.add_argument("--root", default=".", help="the repository root the sources sit under")
    a = p.parse_args()
    text, assessments = report(root=Path(a.root))
    Path(a.out).write_text(text)
    for x in assessments:
        print(f"{x.data:12s} {x.claim.id:34s} {x.verdict}")
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
