"""A test-only callback, composed in through the config (+callbacks.crash=...): it interrupts a
run once, like a preempted job, so the same command can be rerun with the same config."""

from __future__ import annotations

from pathlib import Path

import lightning as L


class Interrupted(RuntimeError):
    pass


class CrashOnce(L.Callback):
    """Raise at optimiser step `step` unless `marker` exists (then create it): the first run
    dies there, reruns of the same config go through."""

    def __init__(self, step: int, marker: str):
        self.step, self.marker = step, Path(marker)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if trainer.global_step >= self.step and not self.marker.exists():
            self.marker.touch()
            raise Interrupted(f"interrupted at step {trainer.global_step}")
