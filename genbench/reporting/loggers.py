"""What a run sends to its loggers (W&B, CSV): the hyper-parameters as flat dashboard columns,
the results' metrics under test/, and for W&B the summary a run can be rebuilt from, its
images, the quality-vs-compute curve and a table of samples with their classifier labels."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from genbench.core import results as res
from genbench.core.keys import LOGGED_KEYS
from genbench.evaluation.evaluate import evaluation_seed
from genbench.evaluation.labels import classify

log = logging.getLogger(__name__)


def build_loggers(logger_cfg: DictConfig | None, wandb_id: str) -> list:
    """The configured loggers; a W&B run keeps the job's id, so a resumed job continues it."""
    loggers = []
    for c in (logger_cfg or {}).values():
        if c is None:
            continue
        if c.get("_target_", "").endswith("WandbLogger"):
            loggers.append(instantiate(c, id=wandb_id, resume="allow"))
        else:
            loggers.append(instantiate(c))
    return loggers


def flat_columns(cfg: DictConfig, module) -> dict:
    """The config keys a dashboard slices by, as flat typed columns (W&B config, top level)."""
    config = OmegaConf.to_container(cfg, resolve=True, enum_to_str=True)
    cost = module.sampling_cost()
    names = (module.family, cfg.model_name, cfg.dataset_name, int(cfg.seed))
    return _columns(config, names, module.nll_kind, cost.get("sampler"), cost.get("nfe"))


def record_columns(record: dict) -> dict:
    """flat_columns of a run rebuilt from its results.json: the config it recorded (none for
    the floor or external samples), the sampler and likelihood it was evaluated with."""
    m = record["metrics"]
    names = (record["family"], record["model"], record["dataset"], record["seed"])
    return _columns(
        record.get("config") or {}, names, m.get("nll_kind"), m.get("sampler"), m.get("nfe")
    )


def _columns(config: dict, names: tuple, nll_kind, sampler, nfe) -> dict:
    kind, value = res.budget_kind_value({"config": config})
    ema = (config.get("callbacks") or {}).get("ema")
    family, model, dataset, seed = names
    return {
        "family": family,
        "model_name": model,
        "dataset_name": dataset,
        "experiment_name": config.get("experiment_name"),
        "seed": int(seed),
        "budget_kind": kind,
        "budget_value": value,
        "sampler": str(sampler),
        "nfe": nfe,
        "ema_decay": float(ema["decay"]) if ema else 0.0,
        "nll_kind": nll_kind,
    }


def wandb_summary(record: dict) -> dict:
    """What log_metrics puts in a W&B run's summary, from which collect.record_from_wandb
    rebuilds the record: every logged key of the registry (core/keys.py) as results.json has
    it, numbers as floats, nested values as they are (intervals and curves as lists, the
    estimator and selection records as dicts, flags, labels); a key not computed null, also as
    test/<key> (the numbers' history name), so a re-evaluation that no longer has one leaves no
    earlier value standing; and status/family/model/dataset/seed."""
    metrics = record["metrics"]
    logged = {k: metrics.get(k) for k in LOGGED_KEYS}
    numeric = _numeric(logged)
    structured = {k: v for k, v in logged.items() if v is not None and k not in numeric}
    nulls = {n: None for k, v in logged.items() if v is None for n in (k, f"test/{k}")}
    ident = {k: record[k] for k in res.RECORD_KEYS}
    return {**nulls, **numeric, **structured, **ident}


def _numeric(metrics: dict) -> dict[str, float]:
    return {
        k: float(v)
        for k, v in metrics.items()
        if isinstance(v, (int, float)) and not isinstance(v, bool)
    }


def log_metrics(loggers: list, record: dict, out_dir: Path, sample_table=None) -> None:
    """Send the results metrics (same names as results.json) to every logger: the numbers as
    test/<key>, and to W&B the summary a record is rebuilt from (wandb_summary).

    W&B also gets the samples and nearest-neighbour images, the quality-vs-compute curve as
    points of curve/fid over curve/nfe, and `sample_table`.
    """
    metrics = record["metrics"]
    undeclared = sorted(set(metrics) - set(res.METRIC_KEYS))
    if undeclared:  # declare them in genbench/core/keys.py: a key not there is not logged
        log.warning("metrics not in the registry of result keys, not logged: %s", undeclared)
    numeric = _numeric({k: metrics.get(k) for k in LOGGED_KEYS})
    for lg in loggers:
        lg.log_metrics({f"test/{k}": v for k, v in numeric.items()})
        if is_wandb(lg):
            run = lg.experiment
            run.summary.update(wandb_summary(record))
            for key in ("samples", "nearest_neighbours"):
                if (out_dir / f"{key}.png").exists():
                    lg.log_image(key, [str(out_dir / f"{key}.png")])
            run.define_metric("curve/*", step_metric="curve/nfe")
            for point in metrics.get("curve") or []:
                run.log({f"curve/{k}": v for k, v in point.items() if k in ("nfe", "fid")})
            if sample_table is not None:
                run.log({"sample_table": sample_table})
        lg.save()


def wandb_sample_table(module, datamodule, cfg: DictConfig):
    """A W&B Table of `eval.grid_samples` samples (those of samples.png) with the evaluation
    classifier's label and confidence, so a dashboard can filter one class across families."""
    import wandb

    spec = module.spec
    if not spec.is_image or cfg.eval.grid_samples <= 0:
        return None
    seed = evaluation_seed(cfg.eval.sample_seed, cfg.seed)
    gen = torch.Generator(device=module.device).manual_seed(seed)
    with torch.inference_mode():
        samples = module.sample(cfg.eval.grid_samples, generator=gen).cpu()
    labelled = classify(samples, datamodule, cfg.eval.cache_dir)
    table = wandb.Table(columns=["sample", "label", "confidence", "family", "model", "seed"])
    for i, x in enumerate(samples):
        label, conf = (int(labelled[0][i]), float(labelled[1][i])) if labelled else (None, None)
        image = wandb.Image((x.float() / (spec.num_levels - 1)).permute(1, 2, 0).numpy())
        table.add_data(image, label, conf, module.family, cfg.model_name, int(cfg.seed))
    return table


def update_wandb_run(run_dir: Path, record: dict, out_dir: Path | None) -> str | None:
    """After genbench-eval re-evaluated a run: the run's own W&B run (the id in its
    run_state.json, the logger settings its results.json recorded) gets the new metrics and
    images and the evaluation's settings (config eval_config), so W&B and results.json agree.
    Offline, wandb writes one more offline-run-* folder of the same id beside the first (W&B
    merges them at `wandb sync`; collect.from_wandb_offline reads them merged). Returns the
    W&B run's id, or None where the run logged to no W&B."""
    import json

    from genbench.reporting.wandb_logger import WandbLogger

    settings = ((record.get("config") or {}).get("logger") or {}).get("wandb")
    try:
        wandb_id = json.loads((run_dir / "run_state.json").read_text())["wandb_id"]
    except (OSError, ValueError, KeyError):
        wandb_id = None
    if not settings or not wandb_id:
        return None
    import wandb

    kwargs = {k: v for k, v in settings.items() if k not in ("_target_", "save_dir", "id")}
    # the mode asked for now, as the logger config reads it at training; else the run's own
    kwargs["mode"] = os.environ.get("WANDB_MODE") or kwargs.get("mode")
    logger = WandbLogger(**kwargs, save_dir=str(run_dir), id=wandb_id, resume="allow")
    try:
        logger.experiment.config.update(
            {"eval_config": record.get("eval_config")}, allow_val_change=True
        )
        logger.experiment.summary.update({"reevaluated": record.get("reevaluated")})
        log_metrics([logger], record, Path(out_dir) if out_dir is not None else run_dir)
    except wandb.errors.Error as e:  # e.g. a run logged online, no login here
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ValueError(
            f"results.json is updated; its W&B run {wandb_id} is not ({first}); "
            "rerun with WANDB_MODE=offline or after `wandb login`"
        ) from e
    finally:
        finish_wandb([logger])
    return wandb_id


def is_wandb(logger) -> bool:
    return type(logger).__name__ == "WandbLogger"


def finish_wandb(loggers: list) -> None:
    if any(is_wandb(lg) for lg in loggers):
        import wandb

        wandb.finish()
        # finish() can return before W&B's service process has written the run's last records
        # (the summary) to the offline file; teardown waits for it, so the file is complete
        # when the job returns (a table built right after the sweep reads every metric).
        wandb.teardown()
