"""One run: compose -> instantiate -> fit -> evaluate -> write results.json
(docs/architecture.md)."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import lightning as L
import torch
from hydra.utils import instantiate
from lightning.pytorch.callbacks import LearningRateMonitor
from omegaconf import DictConfig, OmegaConf, open_dict

from genbench.config import check_config, describe_budget
from genbench.core import results as res
from genbench.core.checkpoint_loading import load_checkpoint
from genbench.core.settings import EvalSettings
from genbench.core.threads import limit_threads
from genbench.evaluation.evaluate import count_params, evaluate
from genbench.evaluation.validation import describe_selection
from genbench.families.build import build_model, scale_learning_rates
from genbench.jobs import plan_job, write_state
from genbench.logs import quiet_library_logs
from genbench.reporting.loggers import (
    build_loggers,
    finish_wandb,
    flat_columns,
    is_wandb,
    log_metrics,
    wandb_sample_table,
)
from genbench.reporting.summary import summary_line
from genbench.training.budget import probe_flops, trainer_limits
from genbench.training.callbacks import DivergenceMonitor, FirstStepTimer
from genbench.training.checkpoints import AtomicCheckpointIO, BestCheckpoint
from genbench.training.ema import EMA, effective_decay
from genbench.training.speed import SpeedSwitches

log = logging.getLogger(__name__)


def build_callbacks(callbacks_cfg: DictConfig | None, has_logger: bool) -> list[L.Callback]:
    """Every non-null entry of the `callbacks` group (conf/callbacks/), instantiated."""
    callbacks = []
    for c in (callbacks_cfg or {}).values():
        if c is None:
            continue
        cb = instantiate(c)
        if isinstance(cb, LearningRateMonitor) and not has_logger:
            continue  # Lightning refuses an LR monitor without a logger
        callbacks.append(cb)
    return callbacks


def speed_switches(hardware: DictConfig) -> SpeedSwitches:
    """The hardware group's speed switches as the fit's first callback: before EMA's, which
    copies the module at setup (genbench/training/speed.py)."""
    return SpeedSwitches(
        hardware.fused_optimizer,
        hardware.channels_last,
        hardware.compile,
        hardware.matmul_precision,
    )


def find(callbacks: list, kind: type):
    """The first callback of type `kind`, or None when the config has none."""
    return next((c for c in callbacks if isinstance(c, kind)), None)


def new_record(cfg: DictConfig, family: str) -> dict:
    """This run's record (status "failed" until it completes)."""
    config = OmegaConf.to_container(cfg, resolve=True, enum_to_str=True)
    return res.new_record(
        family, cfg.model_name, cfg.dataset_name, cfg.seed, config=config, device=None
    )


def run(cfg: DictConfig) -> dict:
    """Train and evaluate the configured model; return the results record.

    Any exception after the model is built is recorded as status "failed" (with a one-line
    error) in results.json before it propagates.
    """
    check_config(cfg)  # a setting no run can use: an error before anything (the CLI checks too)
    quiet_library_logs()
    out_dir = Path(cfg.paths.output_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    limit_threads(cfg.hardware.get("threads"))
    settings = EvalSettings.from_mapping(cfg.eval)
    L.seed_everything(cfg.seed, workers=True)

    plan = plan_job(cfg, out_dir)
    if plan.action == "skip":
        log.info("job %s: skipped (%s for this config)", out_dir.name, plan.record["status"])
        return plan.record
    log.info(
        "job %s: %s (seed %s, %s, %s)",
        out_dir.name,
        f"resuming from {plan.ckpt_path}" if plan.ckpt_path else "starting",
        cfg.seed,
        describe_budget(cfg.budget),
        res.device_name(
            "cuda"
            if cfg.hardware.accelerator in ("gpu", "cuda") and torch.cuda.is_available()
            else "cpu"
        ),
    )
    write_state(out_dir, plan)
    try:
        return _run(cfg, out_dir, plan, settings)
    except Exception as e:  # before the run's record existed: say so in results.json too
        if not getattr(e, "genbench_recorded", False):
            record = new_record(cfg, str(cfg.model_name))
            record.update(config_hash=plan.config_hash, error=one_line(e))
            res.write_results(results_path(out_dir, record), record)
            log.error("failed: %s", one_line(e))
        raise


def _run(cfg: DictConfig, out_dir: Path, plan, settings: EvalSettings) -> dict:
    datamodule = instantiate(cfg.dataset)
    scaled = scale_learning_rates(cfg.model, cfg.lr_scale)
    if scaled is not cfg.model:
        with open_dict(cfg):  # the record keeps the rates the run trained with
            cfg.model = scaled
    module = build_model(cfg.model, datamodule.spec)
    ckpt_path = plan.ckpt_path
    if ckpt_path is not None:
        load_checkpoint(ckpt_path, module)  # fail early, in one line, on a bad checkpoint
    cost = None
    if cfg.budget.probe_batches > 0:
        cost = probe_flops(
            module,
            lambda: instantiate(cfg.dataset),
            cfg.budget.probe_batches,
            cfg.hardware.accelerator,
            cfg.hardware.precision,
        )
        L.seed_everything(cfg.seed, workers=True)  # the probe drew from the global RNG
    limits = trainer_limits(cfg.budget, cost)
    loggers = build_loggers(cfg.get("logger"), plan.wandb_id)
    for lg in loggers:
        config = OmegaConf.to_container(cfg, resolve=True, enum_to_str=True)
        lg.log_hyperparams({**config, **flat_columns(cfg, module)})
    callbacks = [
        speed_switches(cfg.hardware),
        *build_callbacks(cfg.get("callbacks"), bool(loggers)),
    ]
    trainer: L.Trainer = instantiate(
        cfg.trainer,
        logger=loggers or False,
        callbacks=callbacks,
        default_root_dir=str(out_dir),
        plugins=[AtomicCheckpointIO()],
        **limits,
    )
    record = new_record(cfg, module.family)
    record["config_hash"] = plan.config_hash
    if cost is not None:
        record["budget"] = {
            "flops_per_step": cost.flops_per_step,
            "steps_per_batch": cost.steps_per_batch,
            **{k: v for k, v in limits.items() if v is not None},
        }
    try:
        fit_and_evaluate(cfg, trainer, module, datamodule, callbacks, ckpt_path, record, cost)
    except KeyboardInterrupt:
        record["error"] = INTERRUPTED
        raise
    except Exception as e:
        record.update(status="failed", error=one_line(e))
        log.error("failed: %s", one_line(e))
        e.genbench_recorded = True  # results.json is written below
        raise
    finally:
        if trainer.is_global_zero:
            res.write_results(results_path(out_dir, record), record)
            if record["status"] == "completed" and any(is_wandb(lg) for lg in loggers):
                table = wandb_sample_table(module, datamodule, cfg)
            else:
                table = None
            if record["status"] != "failed":
                log_metrics(loggers, record, out_dir, table)
        finish_wandb(loggers)
        if trainer.is_global_zero:  # the run's last line: after W&B's own closing lines
            log.info(summary_line(record, out_dir / "results.json"))
    return record


def fit_and_evaluate(cfg, trainer, module, datamodule, callbacks, ckpt_path, record, cost):
    settings = EvalSettings.from_mapping(cfg.eval)
    start = time.perf_counter()
    try:
        trainer.fit(module, datamodule=datamodule, ckpt_path=ckpt_path, weights_only=True)
    except SystemExit as e:  # Lightning's answer to Ctrl-C in fit: its clean-up, then exit(1)
        raise KeyboardInterrupt from e
    m = record["metrics"]
    record["device"] = res.device_name(module.device)
    timer = find(callbacks, FirstStepTimer)
    m.update(
        nll_kind=module.nll_kind,
        params=count_params(module),
        # Across resumes when the timer is on (a resumed run's own process trained only the rest).
        train_time_s=timer.train_time_s() if timer else time.perf_counter() - start,
        train_steps=trainer.global_step,
        train_flops=None if cost is None else cost.flops_per_step * trainer.global_step,
    )
    if timer is not None:
        record["startup_s"] = timer.startup_s  # process start -> first training step
        record["setup_s"] = timer.setup_s  # this run's callbacks built -> first training step
    if ckpt_path is not None:
        record["resumed_from"] = str(ckpt_path)

    divergence = find(callbacks, DivergenceMonitor)
    if divergence is not None and divergence.diverged:
        record.update(
            status="diverged", error=divergence.reason, diverged_at_step=divergence.diverged_at_step
        )
        log.warning("run diverged: %s", divergence.reason)
        return
    best = find(callbacks, BestCheckpoint)
    record["evaluated_checkpoint"] = "last"
    ema = find(callbacks, EMA)
    updates = ema._average_model.n_averaged if ema and ema._average_model is not None else None
    if best is not None and best.best_model_score is not None:
        record["best_val"] = {"monitor": best.monitor, "value": float(best.best_model_score)}
        if settings.checkpoint == "best" and best.best_model_path:
            state = load_checkpoint(best.best_model_path, module)
            module.load_state_dict(state["state_dict"])
            record["evaluated_checkpoint"] = Path(best.best_model_path).name
            updates = (state.get("averaging_state") or {}).get("n_averaged", updates)
    chosen_by = best.monitor if record["evaluated_checkpoint"] != "last" else None
    m["selection"] = describe_selection(chosen_by, module, callbacks)
    if ema is not None and updates is not None:  # the rate the evaluated weights last got
        m["ema_decay_applied"] = effective_decay(ema.decay, max(int(updates) - 1, 0))
    start = time.perf_counter()
    out_dir = Path(cfg.paths.output_dir)
    m.update(evaluate(module, datamodule, out_dir, settings, run_seed=int(cfg.seed)))
    m["eval_time_s"] = time.perf_counter() - start
    record["status"] = "completed"


# A rerun resumes only in this folder (a new run gets a new timestamped one): genbench-train's
# last line gives the whole command.
INTERRUPTED = (
    "interrupted (Ctrl-C): the same command with hydra.run.dir set to this folder (a sweep's: "
    "hydra.sweep.dir to the sweep's) resumes from the last checkpoint"
)


def results_path(out_dir: Path, record: dict) -> Path:
    """results.json, except that a failure never replaces a completed run's record."""
    path = out_dir / "results.json"
    if record["status"] == "failed" and path.exists():
        try:
            if res.read_results(path)["status"] == "completed":
                return out_dir / "results.failed.json"
        except res.ResultsError:
            pass
    return path


def one_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0] if text else ''}"
