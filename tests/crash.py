"""Test-only callbacks, composed in through the config (+callbacks.crash=...): one interrupts a
run once, like a preempted job, so the same command can be rerun with the same config; one
records where a run validated."""

from __future__ import annotations

from pathlib import Path

import lightning as L

# Where CrashOnce can strike: after a training batch (its step checkpoint, if due, is on disk),
# as a validation starts (the training batch before it is done), or before a training batch.
HOOKS = ("train_batch_end", "validation_start", "train_batch_start")


class Interrupted(RuntimeError):
    pass


class CrashOnce(L.Callback):
    """Raise at optimiser step `step` (at hook `at`, see HOOKS) unless `marker` exists (then
    create it): the first run dies there, reruns of the same config go through."""

    def __init__(self, step: int, marker: str, at: str = "train_batch_end"):
        if at not in HOOKS:
            raise ValueError(f"at={at!r}; valid: {HOOKS}")
        self.step, self.marker, self.at = step, Path(marker), at

    def _maybe_crash(self, trainer: L.Trainer, hook: str) -> None:
        if hook != self.at or trainer.sanity_checking or self.marker.exists():
            return
        if trainer.global_step >= self.step:
            self.marker.touch()
            raise Interrupted(f"interrupted at step {trainer.global_step} ({hook})")

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self._maybe_crash(trainer, "train_batch_end")

    def on_validation_start(self, trainer, pl_module) -> None:
        self._maybe_crash(trainer, "validation_start")

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self._maybe_crash(trainer, "train_batch_start")


class ValidationLog(L.Callback):
    """Append the optimiser step of every finished validation (not the sanity check) to `path`,
    one line each, across the processes of a killed and resumed run."""

    def __init__(self, path: str):
        self.path = Path(path)

    def on_validation_end(self, trainer, pl_module) -> None:
        if not trainer.sanity_checking:
            with self.path.open("a") as f:
                f.write(f"{trainer.global_step}\n")
