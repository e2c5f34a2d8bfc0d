"""genbench-eval's work: re-evaluate a trained checkpoint, or compute the real-data floor."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from genbench.core import results as res
from genbench.core.checkpoints import load_checkpoint
from genbench.evaluation.baselines import IndependentPixels
from genbench.evaluation.evaluate import evaluate
from genbench.evaluation.fidelity import floor_sets, real_data_floor
from genbench.evaluation.images import save_nearest_neighbours
from genbench.families.build import build_model

log = logging.getLogger(__name__)

# evaluate() options that do not apply to the floor (it samples no model).
_MODEL_ONLY = (
    "checkpoint",
    "curve",
    "nll",
    "nll_max_batches",
    "grid_samples",
    "throughput_samples",
    "throughput_batch_size",
    "throughput_warmup_batches",
    "fidelity",
    "sample_seed",
    "fidelity_batch_size",
)


def run_dir_of(ckpt: str | Path) -> Path:
    """<run>/checkpoints/x.ckpt -> <run>; the run folder must hold .hydra/config.yaml."""
    ckpt = Path(ckpt).expanduser().resolve()
    if not ckpt.is_file():
        raise FileNotFoundError(f"checkpoint {str(ckpt)!r} does not exist")
    run_dir = ckpt.parent.parent if ckpt.parent.name == "checkpoints" else ckpt.parent
    if not (run_dir / ".hydra" / "config.yaml").is_file():
        raise FileNotFoundError(f"no {run_dir / '.hydra' / 'config.yaml'} next to {ckpt}")
    return run_dir


def evaluation_model_config(
    run_model: DictConfig | dict,
    current: DictConfig | dict | None = None,
    overrides: DictConfig | dict | None = None,
) -> tuple[dict, dict]:
    """The model config a re-evaluation builds, and what differs from the run's.

    Every key of `current` (today's config of the run's model and data set, when given) takes
    the run's value where the run has the key, else today's (a key added since the run trained:
    its default); keys today's config no longer has are dropped; then `overrides` (estimator
    settings chosen at evaluation, e.g. model.nll_t_samples=400) apply. A constructor key that
    changes training is never added after the fact this way: training already happened.
    Returns (config, {key: value} of what is not the run's own)."""
    run = (
        OmegaConf.to_container(run_model, resolve=True)
        if isinstance(run_model, DictConfig)
        else dict(run_model)
    )
    cur = current if current is not None else run
    cur = OmegaConf.to_container(cur, resolve=True) if isinstance(cur, DictConfig) else dict(cur)
    extra = dict(overrides or {})
    if isinstance(overrides, DictConfig):
        extra = OmegaConf.to_container(overrides, resolve=True)
    unknown = sorted(set(extra) - set(cur))
    if unknown:
        raise ValueError(
            f"model.{unknown[0]} is not a key of the run's model; valid: {', '.join(sorted(cur))}"
        )
    merged = {k: run.get(k, v) for k, v in cur.items()}
    merged.update(extra)
    changed = {k: v for k, v in merged.items() if run.get(k, object()) != v}
    return merged, changed


def reevaluate_checkpoint(
    ckpt: str | Path,
    eval_cfg: DictConfig | dict,
    out_dir: str | Path | None = None,
    device: str | torch.device = "cpu",
    model_now: DictConfig | dict | None = None,
    model_overrides: DictConfig | dict | None = None,
) -> dict:
    """Rebuild data and model from the run's .hydra/config.yaml, load `ckpt`, evaluate on
    `device`, and update the run's results.json atomically (metrics not recomputed keep their
    old values). The model config is `evaluation_model_config(run's, model_now,
    model_overrides)`; what it changed is recorded as eval_model_changes."""
    ckpt = Path(ckpt).expanduser().resolve()
    run_dir = run_dir_of(ckpt)
    run_cfg = OmegaConf.load(run_dir / ".hydra" / "config.yaml")
    datamodule = instantiate(run_cfg.dataset)
    model_cfg, changed = evaluation_model_config(run_cfg.model, model_now, model_overrides)
    module = build_model(OmegaConf.create(model_cfg), datamodule.spec)
    state = load_checkpoint(ckpt, module)  # one-line error if corrupt or mismatched
    module.load_state_dict(state["state_dict"])
    module.to(device).eval()

    results_path = run_dir / "results.json"
    if results_path.is_file():
        record = res.read_results(results_path)
    else:  # a run that died before writing one: start a record from its config
        record = {
            "schema": res.SCHEMA,
            "status": "completed",
            "family": module.family,
            "model": str(run_dir.name),
            "dataset": datamodule.spec.name,
            "seed": int(run_cfg.get("seed", 0)),
            "metrics": res.empty_metrics(),
            "created": res.now_iso(),
        }
    eval_kwargs = (
        OmegaConf.to_container(eval_cfg, resolve=True)
        if isinstance(eval_cfg, DictConfig)
        else dict(eval_cfg)
    )
    start = time.perf_counter()
    run_seed = int(run_cfg.get("seed", 0))
    metrics = evaluate(module, datamodule, out_dir, **eval_kwargs, run_seed=run_seed)
    metrics["eval_time_s"] = time.perf_counter() - start  # this evaluation's, on `device`
    record["metrics"] = {**res.empty_metrics(), **record.get("metrics", {}), **metrics}
    # A run whose evaluation had failed is completed now; one whose training never finished
    # (no train_steps: killed, crashed) stays failed, so a rerun of its sweep resumes it.
    if record["status"] != "diverged" and record["metrics"].get("train_steps") is not None:
        record["status"] = "completed"
        record.pop("error", None)
    record.update(
        evaluated_checkpoint=ckpt.name,
        reevaluated=res.now_iso(),
        reevaluated_with=res.versions(),  # the code that evaluated; `versions` trained
        eval_config=eval_kwargs,
        eval_model_changes=changed,
        device=res.device_name(module.device),
    )
    res.write_results(results_path, record)
    log.info("updated %s", results_path)
    return record


BASELINES = ("pixels",)


def write_baseline(
    name: str,
    datamodule,
    eval_cfg: DictConfig | dict,
    out_dir: str | Path,
    dataset_name: str,
    smoothing: float = 0.1,
) -> dict:
    """Fit the baseline `name` (BASELINES; "pixels": IndependentPixels, counts + `smoothing`)
    on the training split, evaluate it as a trained family is evaluated, and write
    out_dir/results.json (family "pixel-histogram", provenance "baseline")."""
    if name not in BASELINES:
        raise ValueError(f"baseline={name!r}; valid: {', '.join(BASELINES)}")
    kwargs = (
        OmegaConf.to_container(eval_cfg, resolve=True)
        if isinstance(eval_cfg, DictConfig)
        else dict(eval_cfg)
    )
    kwargs.pop("checkpoint", None)
    kwargs.pop("curve", None)
    module = IndependentPixels(datamodule.spec, smoothing).fit(datamodule.split("train")[0])
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    metrics = evaluate(module, datamodule, out_dir, **kwargs)
    metrics["eval_time_s"] = time.perf_counter() - start
    record = {
        "schema": res.SCHEMA,
        "status": "completed",
        "family": module.family,
        "model": module.family,
        "dataset": dataset_name,
        "seed": 0,
        "metrics": {**res.empty_metrics(), **metrics, "train_flops": 0, "train_steps": 0},
        "baseline": {
            "fitted": f"per-pixel level counts of the {len(datamodule.split('train')[0])} "
            f"training images + {smoothing}",
        },
        "eval_config": kwargs,
        "versions": res.versions(),
        "device": res.device_name(module.device),
        "created": res.now_iso(),
    }
    res.write_results(out_dir / "results.json", record)
    return record


def write_floor(
    datamodule, eval_cfg: DictConfig | dict, path: str | Path, dataset_name: str
) -> dict:
    """The real-data floor written as a results-like JSON: every sample metric with training
    examples in place of samples (fidelity.floor_split: fidelity against the test split, and
    memorisation of held-out training examples against the rest of train), and
    nearest_neighbours.png (16 held-out examples beside their nearest training examples)."""
    kwargs = (
        OmegaConf.to_container(eval_cfg, resolve=True)
        if isinstance(eval_cfg, DictConfig)
        else dict(eval_cfg)
    )
    seed = kwargs.get("sample_seed", 0)
    batch_size = kwargs.get("fidelity_batch_size", 256)
    for k in _MODEL_ONLY:
        kwargs.pop(k, None)
    metrics = real_data_floor(datamodule, seed=seed, batch_size=batch_size, **kwargs)
    sets = floor_sets(
        datamodule, kwargs.get("num_samples", 1000), kwargs.get("memorisation_samples"), seed
    )
    train = datamodule.split("train")[0][: kwargs.get("max_train_samples")]
    save_nearest_neighbours(
        sets["generated"][:16],
        train,
        datamodule.spec,
        Path(path).parent / "nearest_neighbours.png",
    )
    record = {
        "schema": res.SCHEMA,
        "status": "completed",
        "family": "real-data",
        "model": "train-split",
        "dataset": dataset_name,
        "seed": seed,
        "metrics": {**res.empty_metrics(), **metrics},
        "floor": {
            "generated": f"{len(sets['fidelity'])} training examples",
            "reference": "test split",
            "memorisation_generated": f"the first {len(sets['generated'])} validation examples",
            "memorisation_train": f"{len(train)} training examples (as the models')",
        },
        "versions": res.versions(),
        "created": res.now_iso(),
    }
    res.write_results(path, record)
    return record
