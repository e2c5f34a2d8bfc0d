"""What a run sends to its loggers (W&B, CSV): the hyper-parameters as flat dashboard columns,
the results' metrics under test/, and for W&B the summary a run can be rebuilt from, its
images, the quality-vs-compute curve and a table of samples with their classifier labels."""

from __future__ import annotations

from pathlib import Path

import torch
from hydra.utils import instantiate
from omegaconf import DictConfig

from genbench.core import results as res
from genbench.evaluation.evaluate import evaluation_seed
from genbench.evaluation.labels import classify


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
    budget = cfg.budget
    kind = budget.kind.value if hasattr(budget.kind, "value") else str(budget.kind)
    value = {"flops": budget.flops, "steps": budget.steps, "time": budget.max_time}[kind]
    ema = (cfg.get("callbacks") or {}).get("ema")
    cost = module.sampling_cost()
    return {
        "family": module.family,
        "model_name": cfg.model_name,
        "dataset_name": cfg.dataset_name,
        "experiment_name": cfg.experiment_name,
        "seed": int(cfg.seed),
        "budget_kind": kind,
        "budget_value": value,
        "sampler": str(cost.get("sampler")),
        "nfe": cost.get("nfe"),
        "ema_decay": float(ema.decay) if ema else 0.0,
        "nll_kind": module.nll_kind,
    }


def log_metrics(loggers: list, record: dict, out_dir: Path, sample_table=None) -> None:
    """Send the results metrics (same names as results.json) to every logger.

    The W&B summary also gets status/family/model/dataset/seed, so genbench-table can rebuild
    the record from W&B alone; W&B also gets the samples and nearest-neighbour images, the
    quality-vs-compute curve as points of curve/fid over curve/nfe, and `sample_table`.
    """
    metrics = record["metrics"]
    numeric = {
        k: float(v)
        for k, v in metrics.items()
        if isinstance(v, (int, float)) and not isinstance(v, bool)
    }
    for lg in loggers:
        lg.log_metrics({f"test/{k}": v for k, v in numeric.items()})
        if is_wandb(lg):
            run = lg.experiment
            ident = {k: record[k] for k in res.RECORD_KEYS}
            # Intervals and curves as lists, so a run rebuilt from W&B keeps them.
            lists = {
                k: v for k, v in metrics.items() if isinstance(v, list) and k in res.METRIC_KEYS
            }
            run.summary.update({**numeric, **lists, **ident, "nll_kind": metrics["nll_kind"]})
            run.summary.update({"sampler": metrics.get("sampler")})
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
