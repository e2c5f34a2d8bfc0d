"""genbench-train: compose the Hydra config, train, evaluate, write results.json."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

# Absolute, so the console scripts find the configs as well as `python -m` does.
CONF_DIR = str(Path(__file__).resolve().parents[1] / "conf")

log = logging.getLogger("genbench.train")


@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="train")
def main(cfg: DictConfig) -> float | None:
    # Imported here so --help and --cfg stay fast.
    from genbench.evaluation.results import ResultsError
    from genbench.run import CheckpointError, run

    user_errors = (ValueError, FileNotFoundError, CheckpointError, ResultsError)
    try:
        record = run(cfg)
    except user_errors as e:
        message = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        if HydraConfig.get().mode == RunMode.MULTIRUN:
            # The job's results.json says "failed"; the sweep goes on with the other jobs.
            log.error("run failed: %s", message)
            return None
        print(f"genbench-train: error: {message}", file=sys.stderr)
        sys.exit(1)
    # What an Optuna sweep minimises: the validation metric, so the test split stays unseen.
    return (record.get("best_val") or {}).get("value")


if __name__ == "__main__":
    main()
