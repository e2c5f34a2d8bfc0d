"""genbench-eval's work: re-evaluate a trained checkpoint, score the real-data floor, an
independent-pixel baseline or samples made elsewhere, each into a results record."""

from __future__ import annotations

import logging
import shutil
import time
from pathlib import Path

import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from genbench.core import results as res
from genbench.core.checkpoint_loading import load_checkpoint, run_dir_of
from genbench.core.settings import EvalSettings
from genbench.evaluation.baselines import IndependentPixels
from genbench.evaluation.evaluate import evaluate, evaluation_seed
from genbench.evaluation.external import load_samples, samples_hash
from genbench.evaluation.floor import score_floor
from genbench.evaluation.images import save_nearest_neighbours, save_samples
from genbench.evaluation.reference import RealData
from genbench.evaluation.sample_metrics import score_samples
from genbench.families.build import build_model

log = logging.getLogger(__name__)
BASELINES = ("pixels",)


def recorded_choices(run_dir: Path) -> dict:
    """The config-group choices Hydra recorded for the run (.hydra/hydra.yaml: model, dataset,
    ...), {} where it recorded none. The run's config.yaml names them by interpolations of the
    running app's choices (model_name: ${hydra:runtime.choices.model}), which under
    genbench-eval read model None and dataset digits."""
    try:
        choices = OmegaConf.load(run_dir / ".hydra" / "hydra.yaml").hydra.runtime.choices
    except (OSError, AttributeError):
        return {}
    return dict(choices)


def _plain(cfg) -> dict:
    if cfg is None:
        return {}
    return OmegaConf.to_container(cfg, resolve=True) if isinstance(cfg, DictConfig) else dict(cfg)


def evaluation_model_config(
    run_model: DictConfig | dict,
    current: DictConfig | dict | None = None,
    overrides: DictConfig | dict | None = None,
) -> tuple[dict, dict]:
    """The model config a re-evaluation builds, and what differs from the run's.

    Every key of `current` (today's config of the run's model and data set, when given) takes
    the run's value where the run has the key, else today's (a key added since the run trained:
    its default); keys today's config no longer has are dropped; then `overrides` (estimator
    settings chosen at evaluation, e.g. +model.nll_t_samples=400) apply. Training already
    happened: only what evaluation reads can change its numbers.
    Returns (config, {key: value} of what is not the run's own)."""
    run = _plain(run_model)
    cur = _plain(current) if current is not None else run
    extra = _plain(overrides)
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
    settings: EvalSettings,
    out_dir: str | Path | None = None,
    device: str | torch.device = "cpu",
    model_now: DictConfig | dict | None = None,
    model_overrides: DictConfig | dict | None = None,
    data_root: str | Path | None = None,
) -> dict:
    """Rebuild data and model from the run's .hydra/config.yaml, load `ckpt`, evaluate on
    `device`, and update the run's results.json atomically (metrics not recomputed keep their
    old values; the evaluation replaced is kept in its `history`: keep_previous). The model
    config is `evaluation_model_config(run's, model_now, model_overrides)`; what it changed is
    recorded as eval_model_changes."""
    ckpt = Path(ckpt).expanduser().resolve()
    run_dir = run_dir_of(ckpt)
    run_cfg = OmegaConf.load(run_dir / ".hydra" / "config.yaml")
    if data_root is not None:  # the same data, found elsewhere on this machine
        if "root" not in run_cfg.dataset:
            raise ValueError(
                f"data_root={data_root}: the run's data set ({run_cfg.dataset._target_}) "
                "reads no files; valid: data_root=null"
            )
        run_cfg.dataset.root = str(Path(data_root).expanduser())
    datamodule = instantiate(run_cfg.dataset)
    model_cfg, changed = evaluation_model_config(run_cfg.model, model_now, model_overrides)
    module = build_model(OmegaConf.create(model_cfg), datamodule.spec)
    state = load_checkpoint(ckpt, module)  # one-line error if corrupt or mismatched
    module.load_state_dict(state["state_dict"])
    module.to(device).eval()

    results_path = run_dir / "results.json"
    seed = int(run_cfg.get("seed", 0))
    started = res.now_iso()  # `reevaluated`, and when the evaluation it replaces was replaced
    if results_path.is_file():
        record = keep_previous(res.read_results(results_path), run_dir, out_dir, started)
    else:  # a run that died before writing one: start a record from its config
        name = str(recorded_choices(run_dir).get("model") or run_dir.name)
        record = res.new_record(module.family, name, datamodule.spec.name, seed, "completed")
    start = time.perf_counter()
    metrics = evaluate(module, datamodule, out_dir, settings, run_seed=seed)
    metrics["eval_time_s"] = time.perf_counter() - start  # this evaluation's, on `device`
    record["metrics"] = {**res.empty_metrics(), **record.get("metrics", {}), **metrics}
    # A run whose evaluation had failed is completed now; one whose training never finished
    # (no train_steps: killed, crashed) stays failed, so a rerun of its sweep resumes it.
    if record["status"] != "diverged" and record["metrics"].get("train_steps") is not None:
        record["status"] = "completed"
        record.pop("error", None)
    record.update(
        evaluated_checkpoint=ckpt.name,
        reevaluated=started,
        reevaluated_with=res.versions(),  # the code that evaluated; `versions` trained
        eval_config=settings.to_dict(),
        eval_model_changes=changed,
        eval_dir=None if out_dir is None else str(Path(out_dir).resolve()),
        device=res.device_name(module.device),
    )
    res.write_results(results_path, record)
    log.info("updated %s", results_path)
    return record


# What an evaluation writes into its folder besides results.json (evaluate.evaluate).
EVALUATION_FILES = ("samples.png", "nearest_neighbours.png", "test_nll_bpd.npy")


def keep_previous(record: dict, run_dir: Path, out_dir: str | Path | None, now: str) -> dict:
    """`record` with its current evaluation appended to its `history` (res.past_evaluation),
    before a re-evaluation replaces it. Where the re-evaluation writes into the folder that
    holds that evaluation's files (the run's own, for training's evaluation), they are copied
    to <folder>/history/<n>/ first, and the entry names that copy."""
    history = record.get("history") or []
    files = Path(record.get("eval_dir") or run_dir)
    if out_dir is not None and Path(out_dir).resolve() == files.resolve():
        old = [files / name for name in EVALUATION_FILES if (files / name).is_file()]
        dest = files / "history" / str(len(history))
        for f in old:
            dest.mkdir(parents=True, exist_ok=True)
            shutil.copy2(f, dest / f.name)  # copied: a file this evaluation skips stays current
        files = dest if old else files
    entry = res.past_evaluation(record, now, str(files))
    return {**record, "history": [*history, entry]}


def write_floor(
    datamodule,
    settings: EvalSettings,
    path: str | Path,
    dataset_name: str,
    device: str | torch.device = "cpu",
) -> dict:
    """The real-data floor written as a results-like JSON: every sample metric with real
    examples in place of samples (floor.floor_sets: training examples for fidelity against the
    test split, validation examples for memorisation against the training split), and
    nearest_neighbours.png (16 of those validation examples beside their nearest training
    examples)."""
    seed = evaluation_seed(settings.sample_seed, 0)
    real = RealData(datamodule, settings, device)
    metrics, sets = score_floor(real, seed)
    save_nearest_neighbours(
        sets["generated"][:16],
        real.train[0],
        datamodule.spec,
        Path(path).parent / "nearest_neighbours.png",
    )
    floor = {
        "generated": f"{len(sets['fidelity'])} training examples",
        "reference": "test split",
        "memorisation_generated": f"the first {len(sets['generated'])} validation examples",
        "memorisation_train": f"{len(real.train[0])} training examples (as the models')",
    }
    record = res.new_record(res.FLOOR_FAMILY, "train-split", dataset_name, seed, "completed")
    record["metrics"].update(metrics)
    record.update(floor=floor, eval_config=settings.to_dict())
    res.write_results(path, record)
    return record


def write_baseline(
    name: str,
    datamodule,
    settings: EvalSettings,
    out_dir: str | Path,
    dataset_name: str,
    smoothing: float = 0.1,
    device: str | torch.device = "cpu",
) -> dict:
    """Fit the baseline `name` (BASELINES; "pixels": IndependentPixels, counts + `smoothing`)
    on the training split, evaluate it as a trained family is evaluated, and write
    out_dir/results.json (family "pixel-histogram", no training FLOPs)."""
    if name not in BASELINES:
        raise ValueError(f"baseline={name!r}; valid: {', '.join(BASELINES)}")
    train = datamodule.split("train")[0]
    module = IndependentPixels(datamodule.spec, smoothing).to(device).fit(train)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    metrics = evaluate(module, datamodule, out_dir, settings.replace(curve=None))
    metrics.update(eval_time_s=time.perf_counter() - start, train_flops=0, train_steps=0)
    record = res.new_record(module.family, module.family, dataset_name, 0, "completed")
    record["metrics"].update(metrics)
    record.update(
        baseline={
            "fitted": f"per-pixel level counts of the {len(train)} training images + {smoothing}"
        },
        eval_config=settings.to_dict(),
        device=res.device_name(module.device),
    )
    res.write_results(out_dir / "results.json", record)
    return record


def write_external(
    samples: str | Path,
    datamodule,
    settings: EvalSettings,
    out_dir: str | Path,
    dataset_name: str,
    name: str | None = None,
    device: str | torch.device = "cpu",
    levels: int | None = None,
    key: str | None = None,
) -> dict:
    """Score samples made elsewhere (external.load_samples: `levels`, the levels the file's
    integers use; `key`, the array of an .npz) with every sample metric, against the same
    references as the trained families, and write out_dir/results.json (family "external",
    model `name` or the file's stem; in `external`: the file, its sha256, the count, and how it
    was read: the array, the integers' range, their levels and the mapping to the data's)."""
    generated, how = load_samples(samples, datamodule.spec, levels=levels, key=key)
    if len(generated) < settings.num_samples:
        log.warning(
            "%d samples, fewer than eval.num_samples=%d: the fidelity metrics' bias differs from "
            "the models'",
            len(generated),
            settings.num_samples,
        )
    generated = generated[: settings.num_samples]
    seed = evaluation_seed(settings.sample_seed, 0)
    start = time.perf_counter()
    real = RealData(datamodule, settings, device)
    metrics = score_samples(generated, real, seed)
    metrics["eval_time_s"] = time.perf_counter() - start
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    grid = generated[: settings.grid_samples]
    if len(grid):
        ref = None if datamodule.spec.is_image else datamodule.split("test")[0]
        save_samples(grid, datamodule.spec, out_dir / "samples.png", reference=ref)
    model = name or Path(samples).stem
    record = res.new_record(res.EXTERNAL_FAMILY, model, dataset_name, 0, "completed")
    record["metrics"].update(metrics)
    record.update(
        external={
            "samples": str(samples),
            "sha256": samples_hash(samples),
            "count": len(generated),
            **how,
        },
        eval_config=settings.to_dict(),
    )
    res.write_results(out_dir / "results.json", record)
    return record
