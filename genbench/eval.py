"""genbench-eval: re-evaluate a trained checkpoint, or compute the real-data floor.

genbench-eval ckpt=outputs/runs/<run>/checkpoints/last.ckpt [eval.num_samples=5000 ...]
genbench-eval floor=true dataset=digits
genbench-eval baseline=pixels dataset=mnist     (independent pixels fitted on the train split)
"""

from __future__ import annotations

from pathlib import Path

import hydra
import torch
from omegaconf import DictConfig

from genbench.config import CONF_PACKAGE, register
from genbench.core.threads import limit_threads


@hydra.main(version_base="1.3", config_path=CONF_PACKAGE, config_name="eval")
def _main(cfg: DictConfig) -> None:
    from hydra.utils import instantiate

    from genbench.evaluation.reevaluate import (
        reevaluate_checkpoint,
        run_dir_of,
        write_baseline,
        write_floor,
    )

    limit_threads(cfg.hardware.get("threads"))
    out_dir = Path(cfg.output_dir)
    if cfg.floor:
        record = write_floor(
            instantiate(cfg.dataset), cfg.eval, out_dir / "floor.json", cfg.dataset_name
        )
        print(f"floor -> {out_dir / 'floor.json'}: {record['metrics']}")
    elif cfg.baseline:
        record = write_baseline(
            cfg.baseline, instantiate(cfg.dataset), cfg.eval, out_dir, cfg.dataset_name
        )
        print(f"baseline {cfg.baseline} -> {out_dir / 'results.json'}: {record['metrics']}")
    elif cfg.ckpt:
        gpu = cfg.hardware.accelerator in ("gpu", "cuda") and torch.cuda.is_available()
        record = reevaluate_checkpoint(
            cfg.ckpt,
            cfg.eval,
            out_dir,
            "cuda" if gpu else "cpu",
            model_now=current_model_config(run_dir_of(cfg.ckpt)),
            model_overrides=cfg.model,
        )
        print(f"updated results.json of {cfg.ckpt}: {record['metrics']}")
    else:
        raise SystemExit(
            "genbench-eval: give ckpt=PATH (re-evaluate a run), floor=true or baseline=pixels"
        )


def current_model_config(run_dir: Path):
    """Today's config of the run's model for its data set (conf/model + dataset_model), or None
    when the run's config does not name them."""
    from hydra import compose
    from omegaconf import OmegaConf

    run_cfg = OmegaConf.load(run_dir / ".hydra" / "config.yaml")
    names = (run_cfg.get("model_name"), run_cfg.get("dataset_name"))
    if None in names:
        return None
    overrides = [f"model={names[0]}", f"dataset={names[1]}"]
    return compose(config_name="train", overrides=overrides).model


def main() -> None:
    """The console script: register the config schemas, then let Hydra compose and run."""
    register()
    _main()


if __name__ == "__main__":
    main()
