"""results.json: one self-describing record per run, written atomically (docs/architecture.md)."""

from __future__ import annotations

import json
import math
import os
import platform
import subprocess
from datetime import datetime, timezone
from pathlib import Path

from genbench.core.atomic import atomic_write_text
from genbench.core.keys import METRIC_KEYS, keys_in  # METRIC_KEYS: every key, groups in order

SCHEMA = 1
STATUSES = ("completed", "diverged", "failed")
# The metric groups, each key declared once in core/keys.py: the evaluation fills them,
# tables and loggers read them.
NLL_KEYS = keys_in("nll")
ESTIMATE_KEYS = keys_in("estimate")  # how far an estimate still moves (the EBM)
FIDELITY_KEYS = keys_in("fidelity")
MEMORISATION_KEYS = keys_in("memorisation")
PIXEL_MEMORISATION_KEYS = keys_in("memorisation_pixels")
CLASS_KEYS = keys_in("class")
LATENT_KEYS = keys_in("latent")  # latent paths (evaluation/latents.py)
MIXING_KEYS = keys_in("mixing")  # the EBM's chains (evaluation/mixing.py)
SPECTRUM_KEYS = keys_in("spectrum")  # the samples' power spectrum (evaluation/spectrum.py)
SAMPLING_KEYS = keys_in("sampling")
RUN_KEYS = keys_in("run")
EVALUATION_KEYS = keys_in("evaluation")  # how the evaluation measured (seed, counts, extractor)
# The real-data floor's pseudo-family (genbench-eval floor=true), in records and tables.
FLOOR_FAMILY = "real-data"
# Samples made elsewhere (genbench-eval samples=...), scored like a family's.
EXTERNAL_FAMILY = "external"
REQUIRED = ("schema", "status", "family", "model", "dataset", "seed", "metrics")
# Keys genbench puts in every W&B run summary so a run can be rebuilt from W&B alone.
RECORD_KEYS = ("status", "family", "model", "dataset", "seed")


class ResultsError(ValueError):
    """A results file that is missing, unreadable or not of this schema."""


def empty_metrics() -> dict:
    """Every metric key, null: a metric not computed is null, never 0."""
    return dict.fromkeys(METRIC_KEYS)


def new_record(
    family: str, model: str, dataset: str, seed: int, status: str = "failed", **extra
) -> dict:
    """A run's record (results.json) with every metric null and the code's versions: the one
    constructor training, re-evaluation, the floor, baselines and external samples use."""
    return {
        "schema": SCHEMA,
        "status": status,
        "family": family,
        "model": model,
        "dataset": dataset,
        "seed": int(seed),
        "metrics": empty_metrics(),
        "versions": versions(),
        "created": now_iso(),
        **extra,
    }


def past_evaluation(record: dict, replaced: str, files: str | None) -> dict:
    """What a re-evaluation replaces in `record`, kept in its `history` list: the evaluation's
    time (`evaluated_at`: genbench-eval's `reevaluated`, or for the training run's own
    evaluation the run's `created`, its start), its code (`versions`), settings (`eval_config`,
    `eval_model_changes`), checkpoint, device, status, every metric, and where its files
    (samples.png, per-example NLLs) are; `replaced`: when the re-evaluation replaced it."""
    config = record.get("config") or {}
    return {
        "evaluated_at": record.get("reevaluated") or record.get("created"),
        "replaced_at": replaced,
        "versions": record.get("reevaluated_with") or record.get("versions"),
        "eval_config": record.get("eval_config") or config.get("eval"),
        "eval_model_changes": record.get("eval_model_changes") or {},
        "evaluated_checkpoint": record.get("evaluated_checkpoint"),
        "device": record.get("device"),
        "status": record["status"],
        "error": record.get("error"),
        "metrics": record["metrics"],
        "files": files,
    }


def validate(record: dict, source: str) -> dict:
    """Check the keys genbench-table relies on; raise ResultsError naming what is wrong and
    where the record came from (`source`: its file or W&B run)."""
    if not isinstance(record, dict):
        raise ResultsError(f"{source}: top level is {type(record).__name__}, expected an object")
    missing = [k for k in REQUIRED if k not in record]
    if missing:
        raise ResultsError(f"{source}: missing keys {missing}")
    if record["schema"] != SCHEMA:
        raise ResultsError(f"{source}: schema={record['schema']!r}; this genbench reads {SCHEMA}")
    if record["status"] not in STATUSES:
        raise ResultsError(f"{source}: status={record['status']!r}; valid: {list(STATUSES)}")
    if not isinstance(record["metrics"], dict):
        raise ResultsError(f"{source}: metrics is not an object")
    return record


# The budget key holding each kind's amount: training FLOPs, optimiser steps, "DD:HH:MM:SS".
BUDGET_AMOUNT_KEYS = {"flops": "flops", "steps": "steps", "time": "max_time"}


def run_budget(record: dict) -> dict:
    """The training budget a record's run had (its config's `budget`); {} for a record of no
    trained run (the floor, a baseline fitted in closed form, samples made elsewhere)."""
    return (record.get("config") or {}).get("budget") or {}


def budget_flops(record: dict) -> float | None:
    """The run's FLOP budget (training FLOPs, forward + backward); None without one."""
    return run_budget(record).get("flops")


def budget_kind_value(record: dict) -> tuple[str | None, float | int | str | None]:
    """(kind, amount) of the run's budget: ("flops", FLOPs), ("steps", optimiser steps),
    ("time", "DD:HH:MM:SS"), or (None, None) without one."""
    budget = run_budget(record)
    kind = budget.get("kind")
    key = BUDGET_AMOUNT_KEYS.get(kind)
    return kind, budget.get(key) if key else None


def _finite(obj):
    """NaN and infinities become null: strict JSON, and 'not a number' is not a result."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    return obj


def write_results(path: str | os.PathLike, record: dict) -> None:
    validate(record, str(path))
    text = json.dumps(_finite(record), indent=2, default=str, allow_nan=False)
    atomic_write_text(path, text + "\n")


def read_results(path: str | os.PathLike) -> dict:
    try:
        record = json.loads(Path(path).read_text())
    except FileNotFoundError as e:
        raise ResultsError(f"{path}: no such results file") from e
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ResultsError(f"{path}: not valid JSON ({e})") from e
    return validate(record, str(path))


def _git(*args: str) -> str | None:
    """Output of a git command run in this source tree, or None (no git, not a checkout)."""
    try:
        out = subprocess.run(
            ["git", *args], capture_output=True, text=True, timeout=10, cwd=Path(__file__).parent
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout if out.returncode == 0 else None


def git_state() -> tuple[str | None, bool | None]:
    """(commit, dirty): dirty = tracked files differ from the commit (untracked files don't
    count). $GENBENCH_GIT_COMMIT, where set, names the commit instead, dirty unknown: a copied
    tree (a lent GPU machine's) can carry stale git metadata. (None, None) outside a checkout."""
    if os.environ.get("GENBENCH_GIT_COMMIT"):
        return os.environ["GENBENCH_GIT_COMMIT"], None
    commit = (_git("rev-parse", "HEAD") or "").strip() or None
    if commit is None:
        return None, None
    status = _git("status", "--porcelain", "--untracked-files=no")
    return commit, None if status is None else bool(status.strip())


def machine() -> str:
    """The CPU model and core count, e.g. 'x86_64, AMD EPYC 7B13, 2 CPUs'."""
    model = platform.processor() or ""
    try:
        with open("/proc/cpuinfo") as f:
            model = next(
                (ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), model
            )
    except OSError:
        pass
    return f"{platform.machine()}, {model or 'unknown CPU'}, {os.cpu_count()} CPUs"


def versions() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    import lightning
    import torch
    import torch_fidelity

    try:
        genbench_version = version("genbench")
    except PackageNotFoundError:  # a source tree on the path, not installed
        genbench_version = None
    commit, dirty = git_state()
    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "lightning": lightning.__version__,
        "torch_fidelity": torch_fidelity.__version__,
        "genbench": genbench_version,
        "git_commit": commit,
        "git_dirty": dirty,
        "machine": machine(),
    }


def device_name(device) -> str:
    import torch

    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"{device.type} ({torch.get_num_threads()} threads)"


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")
