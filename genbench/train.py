"""genbench-train: compose the Hydra config, train, evaluate, write results.json."""

from __future__ import annotations

import hydra
from omegaconf import DictConfig


@hydra.main(version_base="1.3", config_path="../conf", config_name="train")
def main(cfg: DictConfig) -> float | None:
    from genbench.run import run  # imported here so --help and --cfg stay fast

    record = run(cfg)
    # What an Optuna sweep minimises: the validation metric, so the test split stays unseen.
    return (record.get("best_val") or {}).get("value")


if __name__ == "__main__":
    main()
