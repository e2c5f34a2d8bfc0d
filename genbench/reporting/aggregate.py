"""The comparison table's rows: records grouped by family/model/data set, each metric's mean and
standard deviation over the seeds' completed runs, and the mean of each run's own uncertainty
(the standard error over test examples for bits/dim; the half-width of the 95% bootstrap
interval over generated samples for FID and KID). The writers (`table_writers.py`) and the
plots (`table_plots.py`) read these rows.
"""

from __future__ import annotations

import math
from collections import defaultdict

import numpy as np

from genbench.core.keys import BY_NAME, TABLE_COLUMNS, Column
from genbench.core.results import FLOOR_FAMILY

# The columns, left to right: each key's title, format, uncertainty and flags are declared with
# the key (core/keys.py).
COLUMNS: list[Column] = list(TABLE_COLUMNS)


def finite(v) -> float | None:
    """`v` as a float where it is a finite number (not a bool), else None."""
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        return None
    return float(v)


def _within(metrics: dict, spec: str) -> float | None:
    """A run's own uncertainty: a standard error, or the half-width of a [lo, hi] interval."""
    v = metrics.get(spec)
    if BY_NAME[spec].type == "interval":
        if isinstance(v, (list, tuple)) and len(v) == 2 and all(finite(x) is not None for x in v):
            return (v[1] - v[0]) / 2
        return None
    return finite(v)


def _kind_label(done: list[dict]) -> str | None:
    """'exact', 'bound' or 'estimate' (no direction claimed: the footer says why)."""
    return next((r["metrics"].get("nll_kind") for r in done), None)


def aggregate(records: list[dict]) -> list[dict]:
    """Group records by (family, model, dataset); mean/std of each metric over completed runs."""
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for r in records:
        groups[(r["family"], r["model"], r["dataset"])].append(r)
    rows = []
    for (family, model, dataset), runs in sorted(
        groups.items(), key=lambda kv: (kv[0][2], kv[0][0] == FLOOR_FAMILY, kv[0][0], kv[0][1])
    ):
        done = [r for r in runs if r["status"] == "completed"]
        samplers = sorted({str(r["metrics"].get("sampler")) for r in done} - {"None"})
        row = {
            "family": family,
            "model": model,
            "dataset": dataset,
            "runs": len(runs),
            "completed": len(done),
            "seeds": sorted({r["seed"] for r in done}),
            "status": ", ".join(sorted({r["status"] for r in runs})),
            "nll_kind": _kind_label(done),
            "log_z_unconverged": any(r["metrics"].get("log_z_converged") is False for r in done),
            "fidelity_extractor": next(
                (r["metrics"].get("fidelity_extractor") for r in done), None
            ),
            "sampler": ", ".join(samplers) or None,
            "paths": [r.get("_path") for r in done],
            "records": done,
        }
        for col in COLUMNS:
            vals = [v for v in (finite(r["metrics"].get(col.key)) for r in done) if v is not None]
            row[f"{col.key}_mean"] = float(np.mean(vals)) if vals else None
            row[f"{col.key}_std"] = float(np.std(vals, ddof=1)) if len(vals) > 1 else None
            if col.within:
                w = [x for x in (_within(r["metrics"], col.within) for r in done) if x is not None]
                row[f"{col.key}_within"] = float(np.mean(w)) if w else None
        rows.append(row)
    return rows


def curve_points(row: dict) -> dict[str, list[dict]]:
    """Per sampler: [{nfe, fid, fid_lo, fid_hi, samples_per_s}] averaged over the row's seeds."""
    acc: dict[tuple[str, int], list[dict]] = defaultdict(list)
    for rec in row["records"]:
        for p in rec["metrics"].get("curve") or []:
            if finite(p.get("fid")) is not None and finite(p.get("nfe")) is not None:
                acc[(str(p.get("sampler")).rsplit("-", 1)[0], int(p["nfe"]))].append(p)
    out: dict[str, list[dict]] = defaultdict(list)
    for (sampler, nfe), pts in sorted(acc.items()):
        cis = [p["fid_ci"] for p in pts if isinstance(p.get("fid_ci"), (list, tuple))]
        fid = float(np.mean([p["fid"] for p in pts]))
        out[sampler].append(
            {
                "nfe": nfe,
                "fid": fid,
                "fid_lo": float(np.mean([c[0] for c in cis])) if cis else fid,
                "fid_hi": float(np.mean([c[1] for c in cis])) if cis else fid,
                "samples_per_s": float(np.mean([p.get("samples_per_s") or np.nan for p in pts])),
            }
        )
    return out


def floor_mean(rows: list[dict], key: str) -> float | None:
    """The real-data floor's mean of `key`, where the rows have a floor."""
    return next((r[f"{key}_mean"] for r in rows if r["family"] == FLOOR_FAMILY), None)
