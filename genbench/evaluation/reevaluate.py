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
from genbench.evaluation.evaluate import evaluate
from genbench.evaluation.fidelity import floor_split, real_data_floor
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


def reevaluate_checkpoint(
    ckpt: str | Path,
    eval_cfg: DictConfig | dict,
    out_dir: str | Path | None = None,
    device: str | torch.device = "cpu",
) -> dict:
    """Rebuild data and model from the run's .hydra/config.yaml, load `ckpt`, evaluate on
    `device`, and update the run's results.json atomically (metrics not recomputed keep their
    old values)."""
    ckpt = Path(ckpt).expanduser().resolve()
    run_dir = run_dir_of(ckpt)
    run_cfg = OmegaConf.load(run_dir / ".hydra" / "config.yaml")
    datamodule = instantiate(run_cfg.dataset)
    module = build_model(run_cfg.model, datamodule.spec)
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
    metrics = evaluate(module, datamodule, out_dir, **eval_kwargs)
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
        device=res.device_name(module.device),
    )
    res.write_results(results_path, record)
    log.info("updated %s", results_path)
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
    sets = floor_split(datamodule.split("train")[0], kwargs.get("num_samples", 1000), seed)
    save_nearest_neighbours(
        sets["generated"][:16],
        sets["train"],
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
            "memorisation_generated": f"{len(sets['generated'])} held-out training examples",
            "memorisation_train": f"the other {len(sets['train'])} training examples",
        },
        "versions": res.versions(),
        "created": res.now_iso(),
    }
    res.write_results(path, record)
    return record
