"""Offline W&B runs rebuilt from results.json files, so a committed benchmark can be published
to W&B without rerunning it: genbench-table source=docs/benchmark/digits/runs
export_wandb=DIR, then `wandb sync DIR/wandb/offline-run-*` (docs/wandb.md)."""

from __future__ import annotations

import hashlib
from pathlib import Path

from genbench.reporting.loggers import finish_wandb, log_metrics, record_columns
from genbench.reporting.wandb_logger import WandbLogger


def run_id(record: dict) -> str:
    """A W&B run id fixed by the record (its family, model, data set, seed and creation time):
    publishing the same files again writes the same runs, which `wandb sync` updates."""
    key = "/".join(str(record.get(k)) for k in ("family", "model", "dataset", "seed", "created"))
    return hashlib.sha256(key.encode()).hexdigest()[:8]


def _logger_settings(record: dict) -> dict:
    """The W&B run's name, group, tags and job type as training logged them (its recorded
    logger config), or built alike for a record of no W&B-logged run (the floor)."""
    config = record.get("config") or {}
    logged = (config.get("logger") or {}).get("wandb") or {}
    model, dataset = record["model"], record["dataset"]
    return {
        "name": logged.get("name") or f"{model}-{dataset}-s{record['seed']}",
        "group": logged.get("group") or config.get("experiment_name") or record["family"],
        "tags": logged.get("tags") or [model, dataset],
        "job_type": logged.get("job_type") or "evaluate",
    }


def offline_runs(records: list[dict], out_dir: Path, project: str, entity: str | None) -> list[str]:
    """One offline W&B run per record (genbench-table's collect: `_path` is its folder) under
    out_dir/wandb/, logged as a training run logs itself (run.py): the recorded config and the
    flat columns, then the metrics, the images beside its results.json and its curve.
    Returns the run ids."""
    ids = []
    out_dir.mkdir(parents=True, exist_ok=True)  # wandb warns of a save folder not there yet
    for rec in records:
        logger = WandbLogger(
            project=project,
            entity=entity,
            mode="offline",  # uploaded by `wandb sync`, never from here
            save_dir=str(out_dir),
            id=run_id(rec),
            settings={"silent": True},  # 22 runs: our one line says where they are
            **_logger_settings(rec),
        )
        extra = {"eval_config": rec["eval_config"]} if rec.get("eval_config") else {}
        logger.log_hyperparams({**(rec.get("config") or {}), **extra, **record_columns(rec)})
        log_metrics([logger], rec, Path(rec["_path"]))
        finish_wandb([logger])
        ids.append(logger.version)
    return ids
