"""One run: compose -> instantiate -> fit -> evaluate -> write results.json (DESIGN.md)."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import lightning as L
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from genbench.callbacks import DivergenceMonitor
from genbench.evaluation import results as res
from genbench.evaluation.evaluate import count_params, evaluate
from genbench.families.base import GenerativeModule
from genbench.reporting.collect import RECORD_KEYS

log = logging.getLogger(__name__)


def build_model(model_cfg: DictConfig, spec) -> GenerativeModule:
    """Instantiate the model config for a data spec (the spec is passed as a keyword)."""
    # Through a partial, so Hydra does not turn the DataSpec dataclass into a DictConfig.
    module = instantiate(model_cfg, _partial_=True)(spec=spec)
    if not isinstance(module, GenerativeModule):
        raise TypeError(f"model _target_ {model_cfg._target_!r} is not a GenerativeModule")
    return module


def build_loggers(logger_cfg: DictConfig | None) -> list:
    return [instantiate(c) for c in (logger_cfg or {}).values() if c is not None]


def build_callbacks(
    cfg: DictConfig, module: GenerativeModule, out_dir: Path, has_logger: bool
) -> list:
    from lightning.pytorch.callbacks import LearningRateMonitor, ModelCheckpoint

    callbacks = []
    for c in (cfg.get("callbacks") or {}).values():
        if c is None:
            continue
        cb = instantiate(c)
        if isinstance(cb, LearningRateMonitor) and not has_logger:
            continue  # Lightning refuses an LR monitor without a logger
        callbacks.append(cb)
    ck = cfg.checkpoint
    monitor = module.checkpoint_monitor
    callbacks.append(
        ModelCheckpoint(
            dirpath=out_dir / "checkpoints",
            filename="best-{step}",
            monitor=monitor,
            mode="min",
            save_top_k=1 if monitor else 0,
            save_last=True,
            every_n_train_steps=ck.every_n_train_steps,
        )
    )
    callbacks.append(DivergenceMonitor())
    return callbacks


def new_record(cfg: DictConfig, module: GenerativeModule) -> dict:
    return {
        "schema": res.SCHEMA,
        "status": "failed",
        "family": module.family,
        "model": cfg.model_name,
        "dataset": cfg.dataset_name,
        "seed": int(cfg.seed),
        "metrics": res.empty_metrics(),
        "config": OmegaConf.to_container(cfg, resolve=True),
        "versions": res.versions(),
        "device": None,
        "created": res.now_iso(),
    }


def log_metrics(loggers: list, record: dict, samples_png: Path | None) -> None:
    """Send the results metrics (same names as results.json) to every logger.

    The W&B summary also gets status/family/model/dataset/seed, so genbench-table can rebuild
    the record from W&B alone.
    """
    metrics = record["metrics"]
    numeric = {
        k: float(v)
        for k, v in metrics.items()
        if isinstance(v, (int, float)) and not isinstance(v, bool)
    }
    for lg in loggers:
        lg.log_metrics({f"test/{k}": v for k, v in numeric.items()})
        if type(lg).__name__ == "WandbLogger":
            ident = {k: record[k] for k in RECORD_KEYS}
            lg.experiment.summary.update({**numeric, **ident, "nll_kind": metrics["nll_kind"]})
            if samples_png is not None and samples_png.exists():
                lg.log_image("samples", [str(samples_png)])
        lg.save()


def run(cfg: DictConfig) -> dict:
    """Train and evaluate the configured model; return the results record."""
    out_dir = Path(cfg.paths.output_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if cfg.hardware.get("threads"):
        torch.set_num_threads(int(cfg.hardware.threads))
    L.seed_everything(cfg.seed, workers=True)

    datamodule = instantiate(cfg.dataset)
    module = build_model(cfg.model, datamodule.spec)
    loggers = build_loggers(cfg.get("logger"))
    for lg in loggers:
        lg.log_hyperparams(OmegaConf.to_container(cfg, resolve=True))
    callbacks = build_callbacks(cfg, module, out_dir, bool(loggers))
    trainer: L.Trainer = instantiate(
        cfg.trainer, logger=loggers or False, callbacks=callbacks, default_root_dir=str(out_dir)
    )
    record = new_record(cfg, module)

    start = time.perf_counter()
    trainer.fit(module, datamodule=datamodule, ckpt_path=cfg.get("ckpt_path"))
    train_time_s = time.perf_counter() - start

    divergence = next(c for c in callbacks if isinstance(c, DivergenceMonitor))
    record["device"] = res.device_name(module.device)
    m = record["metrics"]
    m.update(
        nll_kind=module.nll_kind,
        params=count_params(module),
        train_time_s=train_time_s,
        train_steps=trainer.global_step,
    )
    samples_png = None
    if divergence.diverged:
        record.update(
            status="diverged", error=divergence.reason, diverged_at_step=divergence.diverged_at_step
        )
        log.warning("run diverged: %s", divergence.reason)
    else:
        ckpt = trainer.checkpoint_callback
        best = ckpt.best_model_path if ckpt is not None else ""
        if cfg.eval.checkpoint == "best" and best:
            state = torch.load(best, map_location=module.device, weights_only=False)
            module.load_state_dict(state["state_dict"])
            record["evaluated_checkpoint"] = Path(best).name
        else:
            record["evaluated_checkpoint"] = "last"
        if ckpt is not None and ckpt.best_model_score is not None:
            record["best_val"] = {"monitor": ckpt.monitor, "value": float(ckpt.best_model_score)}
        m.update(evaluate(module, datamodule, out_dir, **cfg.eval))
        record["status"] = "completed"
        samples_png = out_dir / "samples.png"

    if trainer.is_global_zero:
        res.write_results(out_dir / "results.json", record)
        log_metrics(loggers, record, samples_png)
        log.info("results: %s", {k: v for k, v in m.items() if v is not None})
    _finish_wandb(loggers)
    return record


def _finish_wandb(loggers: list) -> None:
    if any(type(lg).__name__ == "WandbLogger" for lg in loggers):
        import wandb

        wandb.finish()
