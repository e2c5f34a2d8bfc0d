"""docs/claims.md: the verdict of every claim of the lesson (reporting/claims.py) on each data
set whose committed runs exist, the rule once, and a note per claim (issue 33).

Reads committed records only (docs/benchmark/...): no training, no evaluation.
"""

from __future__ import annotations

import inspect
import math
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from genbench.core.results import FLOOR_FAMILY
from genbench.reporting.claims import CLAIMS, LESSON_FAMILIES, Assessment, Claim, assess
from genbench.reporting.collect import collect
from genbench.reporting.measures import RESAMPLES, Evidence
from genbench.reporting.table_writers import sig3
from genbench.reporting.verdicts import (
    CONTRADICTED,
    NOT_MEASURED,
    NOT_SEPARABLE,
    SUPPORTED,
    Estimate,
    verdict,
)

COMMAND = "`make claims` (`python scripts/claims_report.py --out docs/claims.md`)"


@dataclass(frozen=True)
class Source:
    """A data set's committed runs at one budget (`runs`) and, where they exist, its runs at
    several budgets for the compute-scaling fits (`scaling`)."""

    name: str
    runs: str
    scaling: tuple[str, ...] = ()


SOURCES = (
    Source(
        "digits",
        "docs/benchmark/digits/runs",
        ("docs/benchmark/scaling/runs", "docs/benchmark/digits/runs"),
    ),
    Source("MNIST (CPU)", "docs/benchmark/mnist/runs"),
    Source("MNIST (GPU)", "docs/benchmark/mnist-gpu/runs"),
)


def _records(folder: Path) -> list[dict]:
    records, problems = collect(str(folder))
    for problem in problems:
        print(f"skipped: {problem}")
    return records


def _unique_by_budget(records: list[dict]) -> list[dict]:
    """A run and its exported copy (a table's runs/) count once, as in scripts/scaling_report."""
    seen, out = set(), []
    for r in records:
        budget = ((r.get("config") or {}).get("budget") or {}).get("flops")
        key = (r["family"], r["model"], r["dataset"], r["seed"], budget)
        if key not in seen:
            seen.add(key)
            out.append(r)
    return out


def load(source: Source, root: Path, resamples: int = RESAMPLES) -> Evidence | None:
    """The source's Evidence (its runs under `root`, the repository), or None where its runs
    folder is absent."""
    if not (root / source.runs).is_dir():
        return None
    runs = defaultdict(list)
    for r in _records(root / source.runs):
        runs[r["model"]].append(r)
    scaling = [r for d in source.scaling if (root / d).is_dir() for r in _records(root / d)]
    return Evidence(source.name, dict(runs), _unique_by_budget(scaling), resamples)


def _num(v: float) -> str:
    """sig3, whole numbers (NFE, counts) without decimals, 'not reached' for infinity."""
    if math.isinf(v):
        return "not reached"
    return f"{int(v):,}" if float(v).is_integer() and abs(v) < 1e6 else sig3(v)


def estimate_text(est: Estimate) -> str:
    """'194 [165, 223]'; 'not reached' for an infinite compute; '— (why)' without a value."""
    if est.value is None:
        return f"— ({est.basis})"
    if not est.has_interval:
        return f"{_num(est.value)} (no interval)"
    if est.low == est.high == est.value:
        return _num(est.value)
    return f"{_num(est.value)} [{_num(est.low)}, {_num(est.high)}]"


def values_text(a: Assessment) -> str:
    if a.claim.kind == "untested":
        return "needs " + a.claim.missing
    if a.claim.kind == "property":
        kinds = ", ".join(f"{k} ×{a.kinds.count(k)}" for k in sorted(set(a.kinds)))
        return f"**{a.claim.family}**: {kinds or '— (' + '; '.join(a.why) + ')'}"
    parts = [f"{'**' + k + '**' if k == a.claim.family else k} {estimate_text(e)}"
             for k, e in a.values.items()]  # fmt: skip
    return "; ".join(parts)


def verdict_text(a: Assessment) -> str:
    """The verdict; where a group's pairs disagree, each pair's."""
    if len(set(a.pairs.values())) <= 1:
        return a.verdict
    pairs = ", ".join(f"vs {k}: {v}" for k, v in a.pairs.items())
    return f"{a.verdict} ({pairs})"


def metric_text(claim: Claim) -> str:
    if claim.kind == "untested":
        return "—"
    if claim.kind == "property":
        return f"{claim.measure.name} = {claim.expected}"
    better = f" ({claim.measure.better} is better)" if claim.measure.better else ""
    return f"{claim.measure.name}; claimed {claim.expects}{better}"


def table(assessments: list[Assessment]) -> list[str]:
    lines = ["| claim | metric | values, 95% interval (claim's family first) | verdict |"]
    lines.append("|---|---|---|---|")
    for a in assessments:
        c = a.claim
        cells = [f"`{c.id}`: {c.text}", metric_text(c), values_text(a), verdict_text(a)]
        lines.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
    return lines


def _budgets(evidence: Evidence) -> str:
    flops = {
        ((r.get("config") or {}).get("budget") or {}).get("flops")
        for rs in evidence.runs.values()
        for r in rs
        if r.get("family") != FLOOR_FAMILY
    } - {None}
    return ", ".join(f"{f:.2g}" for f in sorted(flops) if f) or "no FLOP budget"


def _trained(records) -> list[dict]:
    return [r for r in records if r.get("family") != FLOOR_FAMILY]


def source_line(source: Source, evidence: Evidence | None) -> str:
    if evidence is None:
        return f"- {source.name}: `{source.runs}` is absent: no verdicts."
    runs = _trained(r for rs in evidence.runs.values() for r in rs)
    seeds = sorted({r["seed"] for r in runs if r.get("seed") is not None})
    done = sum(r.get("status") == "completed" for r in runs)
    newest = max((str(r.get("created") or "")[:10] for r in runs), default="") or "unknown"
    text = (
        f"- {source.name}: `{source.runs}`: {len(runs)} runs ({done} completed) of "
        f"{', '.join(sorted({r['model'] for r in runs}))}, seed(s) "
        f"{', '.join(map(str, seeds))}, at {_budgets(evidence)} training FLOPs, the newest "
        f"made {newest}"
    )
    if source.scaling:
        text += f"; for the compute-scaling fits {len(_trained(evidence.scaling))} runs under "
        text += ", ".join(f"`{d}`" for d in source.scaling)
    return text + "."


def _summary(assessments: list[Assessment]) -> str:
    counts = defaultdict(int)
    for a in assessments:
        counts[a.verdict] += 1
    return ", ".join(f"{n} {v}" for v, n in sorted(counts.items(), key=lambda kv: -kv[1]))


def _verdicts_differ(assessments: list[Assessment]) -> bool:
    return len({a.verdict for a in assessments} - {NOT_MEASURED}) > 1


def note(assessments: list[Assessment]) -> str:
    """A claim's verdict on each data set, what tests it (or what it lacks), why a data set
    could not test it, and how scale bears on it."""
    c = assessments[0].claim
    text = f"- **`{c.id}`** ({c.lesson}): " + "; ".join(
        f"{a.data} {a.verdict}" for a in assessments
    )
    if c.kind == "untested":
        return f"{text}. Needs {c.missing}. {c.scale}"
    text += f". Tested on {c.needs}."
    for a in assessments:
        if a.verdict == NOT_MEASURED and a.why:
            text += f" Not measured on {a.data}: {'; '.join(a.why)}."
    if _verdicts_differ(assessments):
        text += (
            " The verdict changes with the data set: their image sizes, training budgets and "
            "numbers of seeds differ (the sources above), and so does what the rule can separate."
        )
    return f"{text} Scale: {c.scale}"


def glance(by_claim: dict[str, list[Assessment]], data: list[str]) -> list[str]:
    """One row per claim, one verdict column per data set: the report on one screen."""
    lines = ["| claim | family | " + " | ".join(data) + " |", "|---|---|" + "---|" * len(data)]
    for assessments in by_claim.values():
        c, found = assessments[0].claim, {a.data: a.verdict for a in assessments}
        cells = [found.get(d, "—").replace(" at this scale", "") for d in data]
        lines.append(f"| `{c.id}` | {c.family} | " + " | ".join(cells) + " |")
    return lines


VERDICT_ORDER = (SUPPORTED, CONTRADICTED, NOT_SEPARABLE, NOT_MEASURED)


def by_family(by_claim: dict[str, list[Assessment]], data: list[str]) -> list[str]:
    """One row per family of the lesson (flow matching's claims under diffusion, beside which
    the lesson's diffusion claims put it): how many of its claims got each verdict on each data
    set. The README shows this table."""
    short = {NOT_SEPARABLE: "not separable"}
    lines = ["| family | claims | " + " | ".join(data) + " |", "|---|---|" + "---|" * len(data)]
    for family in LESSON_FAMILIES:
        mine = [a for a in by_claim.values() if a[0].claim.lesson == family]
        cells = []
        for d in data:
            found = [a.verdict for group in mine for a in group if a.data == d]
            counts = [(v, found.count(v)) for v in VERDICT_ORDER if found.count(v)]
            cells.append(", ".join(f"{n} {short.get(v, v)}" for v, n in counts) or "—")
        lines.append(f"| {family} | {len(mine)} | " + " | ".join(cells) + " |")
    return lines


def rule_text() -> str:
    return inspect.cleandoc(verdict.__doc__).rsplit("Returns", 1)[0].strip()


def report(
    root: Path, sources=SOURCES, claims=CLAIMS, resamples: int = RESAMPLES
) -> tuple[str, list[Assessment]]:
    """The markdown of docs/claims.md and every Assessment behind it, from the runs under
    `root` (the repository)."""
    loaded = [(s, load(s, root, resamples)) for s in sources]
    lines = [
        "# The lesson's claims, measured",
        "",
        f"Built by {COMMAND} from committed results.json files only (no training):",
        "",
        *[source_line(s, e) for s, e in loaded],
        "",
        f"{len(claims)} claims about the six families of the lesson genbench began from, in "
        "genbench's words (flow matching beside diffusion), each with the measure that tests "
        "it (genbench/reporting/claims.py). Compare within a data set: the FIDs are in each "
        "data set's classifier's features, not Inception's.",
        "",
        "## The rule",
        "",
        rule_text(),
        "",
    ]
    every, by_claim, sections = [], defaultdict(list), []
    for source, evidence in loaded:
        if evidence is None:
            continue
        assessments = [assess(c, evidence) for c in claims]
        every += assessments
        for a in assessments:
            by_claim[a.claim.id].append(a)
        sections += [f"## Verdicts on {source.name}", "", f"{_summary(assessments)}.", ""]
        sections += [*table(assessments), ""]
    data = [s.name for s, e in loaded if e is not None]
    lines += ["## By family", "", *by_family(by_claim, data), ""]
    lines += ["## At a glance", "", *glance(by_claim, data), "", *sections]
    lines += ["## Notes by claim", "", *(note(a) for a in by_claim.values()), ""]
    return "\n".join(lines), every
