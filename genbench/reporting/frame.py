"""Results in Python: every run under a source as one row of a pandas DataFrame."""

from __future__ import annotations

from genbench.core.results import METRIC_KEYS
from genbench.reporting.collect import collect

# Columns of each row, before the metrics: the run's identity and protocol.
ID_COLUMNS = ("family", "model", "dataset", "seed", "status", "budget_kind", "budget_value")


def _flat(rec: dict) -> dict:
    cfg = rec.get("config") or {}
    budget = cfg.get("budget") or {}
    kind = budget.get("kind")
    value = {"flops": budget.get("flops"), "steps": budget.get("steps")}.get(kind)
    row = {k: rec.get(k) for k in ("family", "model", "dataset", "seed", "status")}
    row.update(budget_kind=kind, budget_value=value)
    metrics = rec.get("metrics") or {}
    for key in METRIC_KEYS:
        v = metrics.get(key)
        if isinstance(v, (list, tuple)) and len(v) == 2 and key.endswith("_ci"):
            row[f"{key}_low"], row[f"{key}_high"] = v
        elif not isinstance(v, (list, dict)):
            row[key] = v
    row["path"] = rec.get("_path")
    return row


def load_results(source: str = "outputs", completed_only: bool = False):
    """A pandas DataFrame with one row per run (and the real-data floor) under `source` (a
    folder searched for results.json and floor.json, "wandb-offline://folder" or
    "wandb://entity/project"): family, model, dataset, seed, status, budget_kind, budget_value,
    then every metric of results.json (intervals as <key>_low and <key>_high), and the run's
    folder as `path`. Unreadable files are skipped with a warning, as genbench-table does.

    >>> df = load_results("docs/benchmark/digits/runs")
    >>> df.groupby("model")["nll_bpd"].agg(["mean", "std"])
    """
    import warnings

    import pandas as pd

    records, problems = collect(str(source))
    for p in problems:
        warnings.warn(f"skipped: {p}", stacklevel=2)
    rows = [_flat(r) for r in records if not completed_only or r["status"] == "completed"]
    return pd.DataFrame(rows)
