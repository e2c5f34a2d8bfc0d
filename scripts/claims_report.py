"""docs/claims.md: the lesson's claims, each with its verdict on the committed runs (issue 33).

    python scripts/claims_report.py --out docs/claims.md --readme README.md

Reads docs/benchmark/{digits,scaling,mnist,mnist-gpu}/runs from the repository root; trains
nothing; with --readme, puts the report's table by family between the README's
"<!-- claims by family -->" and "<!-- /claims by family -->" lines.
See genbench/reporting/claims.py for the claims and verdicts.py for the rule.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from genbench.reporting.claims_report import report

BEGIN, END = "<!-- claims by family -->", "<!-- /claims by family -->"


def put_in_readme(readme: Path, report_text: str) -> None:
    """The report's "By family" table between the README's markers (each once)."""
    table = report_text.split("## By family\n\n")[1].split("\n\n")[0]
    text = readme.read_text()
    if text.count(BEGIN) != 1 or text.count(END) != 1:
        raise SystemExit(f"{readme}: needs one {BEGIN!r} line and one {END!r} line")
    head, rest = text.split(BEGIN)
    readme.write_text(f"{head}{BEGIN}\n{table}\n{END}{rest.split(END)[1]}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", required=True, help="the markdown file to write")
    p.add_argument("--root", default=".", help="the repository root the sources sit under")
    p.add_argument("--readme", help="a README whose table by family to update")
    a = p.parse_args()
    text, assessments = report(root=Path(a.root))
    Path(a.out).write_text(text)
    if a.readme:
        put_in_readme(Path(a.readme), text)
    for x in assessments:
        print(f"{x.data:12s} {x.claim.id:34s} {x.verdict}")
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
