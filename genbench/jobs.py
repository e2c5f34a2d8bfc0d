"""What a run folder says about its job: skip it, resume it, or start it.

Rerunning a sweep (or a run with a fixed folder) with `ckpt_path=auto`, the default:
- a job whose results.json is final (completed or diverged) for the same resolved config is
  skipped;
- a job that was interrupted (run_state.json of the same config, a last checkpoint) resumes
  from checkpoints/last.ckpt, or from last.prev.ckpt when last.ckpt cannot be read;
- a folder whose files belong to another config (the sweep changed) is never reused: its files
  move to superseded/<time>/ and the job starts afresh;
- anything else starts afresh.
`ckpt_path=null` always starts afresh; `ckpt_path=<file>` resumes from that file.
The config hash covers the resolved config except where runs are written, logged and cached:
a sweep folder can move, and a longer seed list or another model keeps every job's folder
(jobs are named by model, data set, seed and their other overrides, not by position).
"""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
import shutil
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from genbench.core import results as res
from genbench.core.atomic import atomic_write_text
from genbench.core.checkpoint_loading import CheckpointError, load_checkpoint

log = logging.getLogger(__name__)

STATE_FILE = "run_state.json"
FINAL = ("completed", "diverged")
# Keys that do not change what a job computes: where it writes and how it reports progress.
NOT_HASHED = ("paths", "ckpt_path", "logger")
NOT_HASHED_CALLBACKS = ("progress", "lr_monitor")
# The hardware group's speed switches (training/speed.py): how fast a job trains, not what it
# computes (equal within the tolerances tests/training/test_speed_switches.py states). Hashed,
# a job resumed with a switch flipped would restart, and every job trained before the
# switches existed would look changed and be trained again.
NOT_HASHED_HARDWARE = ("fused_optimizer", "channels_last", "compile", "matmul_precision")
# Keys at any depth naming a folder the job writes to or caches in (absolute once resolved:
# hashed, a sweep moved to another folder or another GENBENCH_CACHE would retrain every job).
NOT_HASHED_ANYWHERE = ("dirpath", "cache_dir")


def _without_folders(node):
    if isinstance(node, dict):
        return {k: _without_folders(v) for k, v in node.items() if k not in NOT_HASHED_ANYWHERE}
    if isinstance(node, list):
        return [_without_folders(v) for v in node]
    return node


def config_hash(cfg: DictConfig) -> str:
    """sha256 (16 hex digits) of the resolved config, minus NOT_HASHED, NOT_HASHED_CALLBACKS,
    NOT_HASHED_HARDWARE and NOT_HASHED_ANYWHERE."""
    c = OmegaConf.to_container(cfg, resolve=True, enum_to_str=True)
    for key in NOT_HASHED:
        c.pop(key, None)
    for key in NOT_HASHED_CALLBACKS:
        (c.get("callbacks") or {}).pop(key, None)
    for key in NOT_HASHED_HARDWARE:
        (c.get("hardware") or {}).pop(key, None)
    c = _without_folders(c)
    return hashlib.sha256(json.dumps(c, sort_keys=True, default=str).encode()).hexdigest()[:16]


@dataclass
class JobPlan:
    action: str  # "skip" | "resume" | "fresh"
    config_hash: str
    wandb_id: str
    ckpt_path: str | None = None
    record: dict | None = None  # the final record of a skipped job


def read_state(out_dir: Path) -> dict | None:
    try:
        return json.loads((out_dir / STATE_FILE).read_text())
    except (OSError, ValueError):
        return None


def write_state(out_dir: Path, plan: JobPlan) -> None:
    state = {"config_hash": plan.config_hash, "wandb_id": plan.wandb_id, "started": res.now_iso()}
    atomic_write_text(out_dir / STATE_FILE, json.dumps(state, indent=2) + "\n")


def _final_record(out_dir: Path) -> dict | None:
    try:
        return res.read_results(out_dir / "results.json")
    except res.ResultsError:
        return None


def readable_last_checkpoint(out_dir: Path) -> Path | None:
    """checkpoints/last.ckpt, or last.prev.ckpt (with a warning) when last.ckpt is unreadable."""
    ck = out_dir / "checkpoints"
    last, prev = ck / "last.ckpt", ck / "last.prev.ckpt"
    for path in (last, prev):
        if not path.is_file():
            continue
        try:
            load_checkpoint(path)
        except CheckpointError as e:
            log.warning("%s; trying the previous checkpoint", e)
            continue
        if path == prev:
            log.warning("resuming from the previous good checkpoint %s", prev)
        return path
    return None


def supersede(out_dir: Path) -> Path:
    """Move a folder's job files (not Hydra's .hydra/) to superseded/<time>/; return it."""
    dest = out_dir / "superseded" / datetime.now().strftime("%Y-%m-%d_%H-%M-%S-%f")
    dest.mkdir(parents=True)
    for p in out_dir.iterdir():
        if p.name not in (".hydra", "superseded") and not p.name.endswith(".log"):
            shutil.move(str(p), dest / p.name)
    return dest


def plan_job(cfg: DictConfig, out_dir: Path) -> JobPlan:
    """Decide what to do with the job whose folder is `out_dir` (see the module docstring)."""
    h = config_hash(cfg)
    mode = cfg.get("ckpt_path", "auto")
    state, record = read_state(out_dir), _final_record(out_dir)
    stored = (state or {}).get("config_hash") or (record or {}).get("config_hash")
    has_files = state is not None or record is not None or (out_dir / "checkpoints").exists()
    if has_files and stored != h and mode in ("auto", "last"):
        moved = supersede(out_dir)
        log.warning("%s held a job of another config: its files moved to %s", out_dir, moved)
        state = record = None
    wandb_id = (state or {}).get("wandb_id") or secrets.token_hex(4)
    if mode not in ("auto", "last"):  # null: start afresh; a path: resume from that file
        return JobPlan("resume" if mode else "fresh", h, wandb_id, mode or None)
    if mode == "auto" and record is not None and record["status"] in FINAL:
        return JobPlan("skip", h, wandb_id, record=record)
    last = readable_last_checkpoint(out_dir) if state is not None else None
    if last is not None:
        return JobPlan("resume", h, wandb_id, str(last))
    return JobPlan("fresh", h, wandb_id)
