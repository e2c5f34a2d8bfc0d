"""The table's footer: the protocol and provenance its numbers come from (budget, validation,
checkpoint rule, EMA, seeds, sample-quality settings, code and library versions, machine), read
from the records themselves, and the units of its KID column.
"""

from __future__ import annotations

from genbench.core.results import FLOOR_FAMILY, budget_kind_value, run_budget
from genbench.reporting.estimator_notes import estimate_note, selection_note

# KID's displayed scale per feature extractor (metrics.fidelity_extractor), named in the footer:
# x10^3 for InceptionV3 (the usual convention), unscaled for the data sets' classifiers, whose
# larger features put KID in the thousands.
KID_SCALES = {"inception": 1e3}


def _distinct(values) -> str:
    vals = sorted({str(v) for v in values if v is not None})
    return ", ".join(vals) if vals else "unknown"


def _applied_decay(runs: list[dict]) -> str:
    """The warm-up's decay at the evaluated weights' last update, over the runs that record it."""
    applied = [r["metrics"].get("ema_decay_applied") for r in runs]
    applied = [a for a in applied if a is not None]
    if not applied:
        return ""
    lo, hi = min(applied), max(applied)
    span = f"{lo:.4f}" if f"{lo:.4f}" == f"{hi:.4f}" else f"{lo:.4f} to {hi:.4f}"
    return f", with a warm-up: the decay the evaluated weights' last update applied was {span}"


def _budget(record: dict) -> str:
    """A trained run's budget, in words."""
    kind, amount = budget_kind_value(record)
    if kind == "flops":
        return f"{amount:.3g} training FLOPs (forward + backward, PyTorch's counter)"
    if kind == "steps":
        return f"{amount} optimiser steps"
    if kind == "time":
        return f"{amount} of wall-clock training (machine-dependent)"
    return "unknown"


def footer(rows: list[dict]) -> list[str]:
    """The protocol and provenance the numbers come from, read from the records themselves."""
    runs = [r for row in rows if row["family"] != FLOOR_FAMILY for r in row["records"]]
    if not runs:
        return []
    # Budget, validation, checkpoint rule, EMA and seeds describe the trained runs; a baseline
    # fitted in closed form or samples made elsewhere have none of them (listed apart).
    references = {r["model"]: _untrained_source(r) for r in runs if _untrained_source(r)}
    trained = [r for r in runs if not _untrained_source(r)]
    cfgs = [r.get("config") or {} for r in trained]

    def ema(c: dict) -> str:
        e = (c.get("callbacks") or {}).get("ema")
        return f"EMA decay {e.get('decay')} (all families)" if e else "no EMA"

    seeds = sorted({r["seed"] for r in trained})
    versions = [r.get("versions") or {} for r in runs]
    # The code that evaluated a run: its re-evaluation's where it was re-evaluated.
    evaluated_by = [r.get("reevaluated_with") or r.get("versions") or {} for r in runs]
    extractors = sorted({str(row.get("fidelity_extractor")) for row in rows} - {"None"})
    kid_units = "; ".join(
        f"{e} features: {'x10³' if KID_SCALES.get(e) == 1e3 else 'unscaled'}" for e in extractors
    )
    lines = []
    if trained:
        validations = _distinct(run_budget(r).get("validations") for r in trained)
        lines += [
            f"Budget per run: {_distinct(_budget(r) for r in trained)}; validation outside the "
            f"budget, {validations} times, evenly spaced; {selection_note(trained)}",
            f"Weights: {_distinct(ema(c) for c in cfgs)}{_applied_decay(trained)}. "
            f"Seeds: {', '.join(map(str, seeds))}.",
        ]
    lines += [
        f"Sample quality: {_distinct(r['metrics'].get('fidelity_num_samples') for r in runs)} "
        "generated samples vs the test split, features: "
        f"{_distinct(r['metrics'].get('fidelity_extractor') for r in runs)}.",
        "Cells: mean ± std over seeds (± each run's own uncertainty: the standard error over "
        "test examples for bits/dim, with an AIS estimate's spread over repetitions for the EBM; "
        "the 95% bootstrap half-width over generated samples for FID and KID). bits/dim of "
        f"{_nll_of(runs)}; its kind follows the number. KID ({kid_units or 'none'}).",
        f"Provenance: trained by genbench {_commits(versions)}; evaluated by genbench "
        f"{_commits(evaluated_by)}; torch {_distinct(v.get('torch') for v in versions)}"
        f", lightning {_distinct(v.get('lightning') for v in versions)}, torch-fidelity "
        f"{_distinct(v.get('torch_fidelity') for v in versions)}; machine "
        f"{_distinct(v.get('machine') for v in versions)}; device "
        f"{_distinct(r.get('device') for r in runs)}.",
    ]
    if references:
        listed = "; ".join(f"{model} ({source})" for model, source in references.items())
        lines.append(f"Not trained under the budget: {listed}.")
    note = estimate_note(trained)
    if note:
        lines.append(note)
    if any(row["log_z_unconverged"] for row in rows):
        lines.append(
            "†: the AIS ladder reached its longest schedule and its last doubling still moved "
            "log Z by more than the spread of independent repetitions (metrics.log_z_ladder)."
        )
    return lines


def _nll_of(runs: list[dict]) -> str:
    """What a bits/dim cell measures: the discrete data's probability (images) or the density
    (continuous 2-D points, whose bits/dim can be negative)."""
    kinds = {
        "the density (continuous points)"
        if str(((r.get("config") or {}).get("dataset") or {}).get("_target_", "")).endswith(
            "Toy2DDataModule"
        )
        else "the discrete data"
        for r in runs
    }
    return " / ".join(sorted(kinds, reverse=True))


def _untrained_source(record: dict) -> str | None:
    """How a row not trained under the budget was made (a fitted baseline, samples made
    elsewhere), or None for a trained run."""
    if record.get("baseline"):
        return record["baseline"].get("fitted")
    if record.get("external"):
        ext = record["external"]
        return f"{ext.get('count')} samples from {ext.get('samples')}"
    return None


def _commits(versions: list[dict]) -> str:
    commits = {(v.get("git_commit") or "")[:10] or None: v.get("git_dirty") for v in versions}
    return ", ".join(
        f"{c} ({'dirty' if d else 'clean' if d is False else 'state unknown'})"
        for c, d in sorted(commits.items(), key=lambda kv: str(kv[0]))
    )
