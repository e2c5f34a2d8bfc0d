"""genbench-train: compose the Hydra config, train, evaluate, write results.json."""

from __future__ import annotations

import logging
import sys

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from genbench.config import CONF_PACKAGE, register

log = logging.getLogger("genbench.train")


@hydra.main(version_base="1.3", config_path=CONF_PACKAGE, config_name="train")
def _main(cfg: DictConfig) -> float | None:
    # Imported here so --help and --cfg stay fast.
    from genbench.core.checkpoints import CheckpointError
    from genbench.core.results import ResultsError
    from genbench.run import run

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


EXAMPLES = [
    "genbench-train model=arm dataset=digits budget=flops budget.flops=1e12",
    "genbench-train -m model=vae,flow seed=0,1,2 budget=flops      (a sweep)",
    "genbench-train -m +experiment=digits_benchmark                 (the digits benchmark)",
]


def main() -> None:
    """The console script: its help page, a check of the override keys, then Hydra."""
    from genbench.cli import check_override_keys, maybe_help

    maybe_help(
        "train",
        "train a generative model, evaluate it on the test split, write "
        "results.json (one run, or a sweep with -m).",
        EXAMPLES,
    )
    register()
    check_override_keys("train")
    try:
        _main()
    except KeyboardInterrupt:  # Ctrl-C: one line, not a traceback per frame of the sweep
        print(f"genbench-train: {INTERRUPTED_MESSAGE}", file=sys.stderr)
        sys.exit(130)


# The last line a Ctrl-C leaves on the console (the interrupted job's results.json says so too).
INTERRUPTED_MESSAGE = (
    "interrupted; rerun the same command to go on: finished jobs are skipped, the interrupted "
    "one resumes from its last checkpoint"
)


if __name__ == "__main__":
    main()
