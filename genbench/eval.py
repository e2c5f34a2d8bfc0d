"""genbench-eval: re-evaluate a trained checkpoint, score the real-data floor, the
independent-pixel baseline, or samples made elsewhere.

genbench-eval ckpt=outputs/runs/<run>/checkpoints/best_step000554.ckpt [eval.num_samples=5000 ...]
genbench-eval floor=true dataset=digits
genbench-eval baseline=pixels dataset=mnist     (independent pixels fitted on the train split)
genbench-eval samples=my_samples.npz dataset=mnist name=my-model   (any model's samples)
"""

from __future__ import annotations

from pathlib import Path

import hydra
import torch
from omegaconf import DictConfig

from genbench.cli import check_command_line
from genbench.config import CONF_PACKAGE, register
from genbench.core.threads import limit_threads
from genbench.help_page import maybe_help


@hydra.main(version_base="1.3", config_path=CONF_PACKAGE, config_name="eval")
def _main(cfg: DictConfig) -> None:
    """A bad value or a missing file ends in one line naming it (exit status 1)."""
    import sys

    from genbench.core.checkpoint_loading import CheckpointError
    from genbench.core.results import ResultsError

    try:
        _evaluate(cfg)
    except (ValueError, FileNotFoundError, CheckpointError, ResultsError) as e:
        text = str(e).strip().splitlines()
        print(f"genbench-eval: error: {text[0] if text else type(e).__name__}", file=sys.stderr)
        sys.exit(1)


def _evaluate(cfg: DictConfig) -> None:
    from genbench.core.checkpoint_loading import run_dir_of

    limit_threads(cfg.hardware.get("threads"))
    if not cfg.samples and (cfg.levels is not None or cfg.key is not None):
        what = "levels" if cfg.levels is not None else "key"
        raise ValueError(f"{what}={cfg[what]!r} describes samples=PATH, which is not given")
    # A missing checkpoint or run folder is named before Lightning and the metrics are imported
    # (seconds on a small machine).
    reevaluating = bool(cfg.ckpt) and not (cfg.floor or cfg.baseline or cfg.samples)
    run_dir = run_dir_of(cfg.ckpt) if reevaluating else None

    from hydra.utils import instantiate

    from genbench.core.settings import EvalSettings
    from genbench.evaluation.reevaluate import (
        reevaluate_checkpoint,
        write_baseline,
        write_external,
        write_floor,
    )
    from genbench.reporting.loggers import update_wandb_run
    from genbench.reporting.summary import summary_line

    settings = EvalSettings.from_mapping(cfg.eval)
    out_dir = Path(cfg.output_dir)
    gpu = cfg.hardware.accelerator in ("gpu", "cuda") and torch.cuda.is_available()
    device = "cuda" if gpu else "cpu"
    if cfg.floor:
        path = out_dir / "floor.json"
        dm = instantiate(cfg.dataset)
        record = write_floor(dm, settings, path, cfg.dataset_name, device)
    elif cfg.baseline:
        path = out_dir / "results.json"
        dm = instantiate(cfg.dataset)
        record = write_baseline(
            cfg.baseline, dm, settings, out_dir, cfg.dataset_name, device=device
        )
    elif cfg.samples:
        path = out_dir / "results.json"
        dm = instantiate(cfg.dataset)
        record = write_external(
            cfg.samples,
            dm,
            settings,
            out_dir,
            cfg.dataset_name,
            cfg.name,
            device,
            levels=cfg.levels,
            key=cfg.key,
        )
    elif reevaluating:
        path = run_dir / "results.json"
        record = reevaluate_checkpoint(
            cfg.ckpt,
            settings,
            out_dir,
            device,
            model_now=current_model_config(run_dir),
            model_overrides=cfg.model,
            data_root=cfg.data_root,
        )
        update_wandb_run(run_dir, record, out_dir)  # W&B agrees with results.json
    else:
        raise ValueError(
            "nothing to evaluate; valid: ckpt=PATH (re-evaluate a run), floor=true, "
            "baseline=pixels, samples=PATH (a folder of images, .npz or .npy)"
        )
    print(summary_line(record, path))


def current_model_config(run_dir: Path):
    """Today's config of the run's model for its data set (conf/model + dataset_model), or None
    where the run's folder does not say which they were (reevaluate.recorded_choices), or
    today's configs do not hold them (a user's own model, its config outside genbench's: the
    run's recorded config is complete)."""
    from hydra import compose
    from hydra.errors import MissingConfigException

    from genbench.evaluation.reevaluate import recorded_choices

    choices = recorded_choices(run_dir)
    names = (choices.get("model"), choices.get("dataset"))
    if None in names:
        return None
    try:
        overrides = [f"model={names[0]}", f"dataset={names[1]}"]
        return compose(config_name="train", overrides=overrides).model
    except MissingConfigException:
        return None


DESCRIPTION = (
    "re-evaluate a trained checkpoint, or score the real-data floor, the independent-pixel "
    "baseline or samples made elsewhere, each into a record like a training run's."
)
EXAMPLES = [
    "genbench-eval ckpt=outputs/runs/RUN/checkpoints/last.ckpt eval.num_samples=5000",
    "genbench-eval floor=true dataset=digits hydra.run.dir=outputs/floor     # the floor",
    "genbench-eval samples=my_samples.npz dataset=digits name=my-model  # anyone's samples",
]
NOTES = [
    "Evaluation settings are eval.<key> (conf/eval/default.yaml): eval.num_samples=5000, "
    "eval.nll=false, ...;",
    "`genbench-eval --cfg job` prints them all. The record goes to hydra.run.dir (default "
    "outputs/eval/<time>).",
    "A misspelt key or a value no evaluation can use ends the command in one line before "
    "anything runs.",
]


def main() -> None:
    """The console script: its help page, a check of the command line, then Hydra."""
    maybe_help("eval", DESCRIPTION, EXAMPLES, NOTES)
    register()
    check_command_line("eval")
    _main()


if __name__ == "__main__":
    main()
