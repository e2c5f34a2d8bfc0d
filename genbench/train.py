"""genbench-train: compose the Hydra config, train, evaluate, write results.json."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from genbench.cli import check_command_line, resume_command
from genbench.config import CONF_PACKAGE, register
from genbench.help_page import maybe_help

log = logging.getLogger("genbench.train")


@hydra.main(version_base="1.3", config_path=CONF_PACKAGE, config_name="train")
def _main(cfg: DictConfig) -> float | None:
    try:
        return _train(cfg)
    except KeyboardInterrupt as e:  # the folder is known only here, inside Hydra's job
        hydra_cfg = HydraConfig.get()
        sweep = hydra_cfg.mode == RunMode.MULTIRUN
        folder = hydra_cfg.sweep.dir if sweep else hydra_cfg.runtime.output_dir
        e.resume_command = resume_command("train", sys.argv[1:], str(Path(folder).resolve()), sweep)
        raise


def _train(cfg: DictConfig) -> float | None:
    # Imported here so --help and --cfg stay fast.
    from genbench.core.checkpoint_loading import CheckpointError
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


DESCRIPTION = (
    "train a generative model, evaluate it on the test split and write results.json (one "
    "run, or a sweep with -m)."
)
EXAMPLES = [
    "genbench-train model=vae trainer=fast eval=fast      # a smoke run: 20 steps, seconds",
    "genbench-train model=arm budget=flops budget.flops=1e12 model.optimizer.lr=3e-4",
    "genbench-train -m model=vae,flow seed=0,1,2 budget=flops hydra.sweep.dir=outputs/vf"
    "   # 6 runs",
]
NOTES = [
    "Any key of the composed config can be set: model.optimizer.lr=1e-3 (the GAN's: "
    "model.lr_g, model.lr_d),",
    "eval.num_samples=5000, dataset.batch_size=64; `genbench-train model=gan --cfg job` prints "
    "them all.",
    "A misspelt key or a value no run can use ends the command in one line before anything runs.",
    "-m runs a sweep; rerun it with the same hydra.sweep.dir to skip finished jobs and resume "
    "an interrupted one.",
    "The digits benchmark: make benchmark (genbench-train -m +experiment=digits_benchmark, "
    "then genbench-table).",
    "Hydra's own flags: --hydra-help. Shell completion (bash): "
    'eval "$(genbench-train -sc install=bash)".',
]


def main() -> None:
    """The console script: its help page, a check of the command line, then Hydra."""
    maybe_help("train", DESCRIPTION, EXAMPLES, NOTES)
    register()
    check_command_line("train")
    try:
        _main()
    except KeyboardInterrupt as e:  # Ctrl-C: one line, not a traceback per frame of the sweep
        command = getattr(e, "resume_command", None)
        print(f"genbench-train: {interrupted_message(command)}", file=sys.stderr)
        sys.exit(130)


def interrupted_message(command: str | None) -> str:
    """The last line a Ctrl-C leaves on the console (the job's results.json says so too):
    `command`, which resumes, last on the line."""
    if command is None:  # before Hydra's job started, or in a launcher's worker process
        return "interrupted; rerun with hydra.run.dir (a sweep: hydra.sweep.dir) set to its folder"
    return (
        "interrupted; it resumes from its last checkpoint (a sweep's finished jobs are skipped) "
        f"with: {command}"
    )


if __name__ == "__main__":
    main()
