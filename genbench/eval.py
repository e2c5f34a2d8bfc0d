"""genbench-eval: re-evaluate a trained checkpoint, or compute the real-data floor.

genbench-eval ckpt=outputs/runs/<run>/checkpoints/last.ckpt [eval.num_samples=5000 ...]
genbench-eval floor=true dataset=digits
"""

from __future__ import annotations

from pathlib import Path

import hydra
import torch
from omegaconf import DictConfig

from genbench.config import CONF_PACKAGE, register


@hydra.main(version_base="1.3", config_path=CONF_PACKAGE, config_name="eval")
def _main(cfg: DictConfig) -> None:
    from hydra.utils import instantiate

    from genbench.evaluation.reevaluate import reevaluate_checkpoint, write_floor

    if cfg.hardware.get("threads"):
        torch.set_num_threads(int(cfg.hardware.threads))
    out_dir = Path(cfg.output_dir)
    if cfg.floor:
        record = write_floor(
            instantiate(cfg.dataset), cfg.eval, out_dir / "floor.json", cfg.dataset_name
        )
        print(f"floor -> {out_dir / 'floor.json'}: {record['metrics']}")
    elif cfg.ckpt:
        gpu = cfg.hardware.accelerator in ("gpu", "cuda") and torch.cuda.is_available()
        record = reevaluate_checkpoint(cfg.ckpt, cfg.eval, out_dir, "cuda" if gpu else "cpu")
        print(f"updated results.json of {cfg.ckpt}: {record['metrics']}")
    else:
        raise SystemExit("genbench-eval: give ckpt=PATH (re-evaluate a run) or floor=true")


def main() -> None:
    """The console script: register the config schemas, then let Hydra compose and run."""
    register()
    _main()


if __name__ == "__main__":
    main()
