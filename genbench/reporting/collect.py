"""Gather run records for genbench-table: results.json files under a folder, or W&B runs."""

from __future__ import annotations

import logging
from pathlib import Path

from genbench.core.keys import LOGGED_KEYS, typed
from genbench.core.results import (
    RECORD_KEYS,
    SCHEMA,
    ResultsError,
    empty_metrics,
    read_results,
    validate,
)

log = logging.getLogger(__name__)


def from_folder(root: str | Path) -> tuple[list[dict], list[str]]:
    """Every results.json (and real-data floor.json) under `root`, recursively: (records,
    one-line problems skipped)."""
    root = Path(root)
    if not root.exists():
        raise FileNotFoundError(f"source={str(root)!r} does not exist")
    records, problems = [], []
    for path in sorted([*root.rglob("results.json"), *root.rglob("floor.json")]):
        try:
            rec = read_results(path)
        except ResultsError as e:
            problems.append(str(e))
            continue
        rec["_path"] = str(path.parent)
        records.append(rec)
    return records, problems


def unfinished(root: str | Path) -> list[str]:
    """Job folders under `root` that started (run_state.json) but hold no final results.json:
    what a rerun of the sweep will resume or run."""
    out = []
    for state in sorted(Path(root).rglob("run_state.json")):
        try:
            done = read_results(state.parent / "results.json")["status"] in (
                "completed",
                "diverged",
            )
        except ResultsError:
            done = False
        if not done and "superseded" not in state.parts:
            out.append(str(state.parent))
    return out


def record_from_wandb(summary: dict, name: str) -> dict:
    """A results record rebuilt from a W&B run summary (as loggers.wandb_summary writes it):
    every logged key of the registry (core/keys.py) as its declared type; null where the run
    has none."""
    rec = {k: summary.get(k) for k in RECORD_KEYS}
    if isinstance(rec["seed"], float) and rec["seed"].is_integer():
        rec["seed"] = int(rec["seed"])  # W&B stores numbers as floats
    rec["schema"] = SCHEMA
    rec["metrics"] = {**empty_metrics(), **{k: typed(k, summary.get(k)) for k in LOGGED_KEYS}}
    return validate(rec, f"wandb run {name}")


def from_wandb_offline(root: str | Path) -> tuple[list[dict], list[str]]:
    """Every offline W&B run (wandb/offline-run-*) under `root`; the folders of one run id (a
    resumed job, a re-evaluation) read as one run, merged oldest first (merge_runs)."""
    from genbench.reporting.wandb_offline import merge_runs, read_offline_run

    runs: dict[str, list[tuple[Path, dict]]] = {}
    problems = []
    # folder names start offline-run-<YYYYmmdd_HHMMSS>: by name is oldest first
    for run_dir in sorted(Path(root).rglob("offline-run-*"), key=lambda p: (p.name, p)):
        if not run_dir.is_dir():
            continue
        try:
            run = read_offline_run(run_dir)
        except (FileNotFoundError, ValueError) as e:
            problems.append(f"{run_dir}: {e}")
            continue
        runs.setdefault(run.get("id") or str(run_dir), []).append((run_dir, run))
    records = []
    for folders in runs.values():
        run_dir = folders[-1][0]
        run = merge_runs([r for _, r in folders])
        try:
            rec = record_from_wandb(run["summary"], run.get("name", run_dir.name))
        except ResultsError as e:
            problems.append(f"{run_dir}: {e}")
            continue
        rec["_path"] = str(run_dir)
        records.append(rec)
    return sorted(records, key=lambda r: r["_path"]), sorted(problems)


def from_wandb_project(path: str) -> tuple[list[dict], list[str]]:
    """Runs of a W&B project 'entity/project' through the public API (needs network + login)."""
    from genbench.reporting.wandb_report import wandb_api

    records, problems = [], []
    for run in wandb_api().runs(path):
        try:
            records.append(record_from_wandb(dict(run.summary), run.name))
        except ResultsError as e:
            problems.append(str(e))
    return records, problems


def collect(source: str) -> tuple[list[dict], list[str]]:
    """Records from `source`: a folder, 'wandb-offline://folder' or 'wandb://entity/project'."""
    if source.startswith("wandb://"):
        return from_wandb_project(source[len("wandb://") :])
    if source.startswith("wandb-offline://"):
        return from_wandb_offline(source[len("wandb-offline://") :])
    return from_folder(source)
