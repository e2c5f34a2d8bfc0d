"""Callbacks genbench adds to every run."""

from __future__ import annotations

import math

import lightning as L
import torch


class DivergenceMonitor(L.Callback):
    """Stop training cleanly when the loss or a parameter turns non-finite.

    Records the step in `self.diverged_at_step` and the reason in `self.reason`; the run then
    writes status "diverged" instead of evaluating NaN weights.
    """

    def __init__(self, check_params_every_n_steps: int = 50):
        self.every = check_params_every_n_steps
        self.diverged_at_step: int | None = None
        self.reason: str | None = None

    def _flag(self, trainer: L.Trainer, reason: str) -> None:
        if self.diverged_at_step is None:
            self.diverged_at_step = trainer.global_step
            self.reason = reason
        trainer.should_stop = True

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        loss = outputs.get("loss") if isinstance(outputs, dict) else outputs
        if isinstance(loss, torch.Tensor) and not torch.isfinite(loss).all():
            self._flag(trainer, f"non-finite loss at step {trainer.global_step}")
            return
        flagged = getattr(pl_module, "diverged_reason", None)
        if flagged:
            self._flag(trainer, flagged)
            return
        if self.every and trainer.global_step % self.every == 0:
            for name, p in pl_module.named_parameters():
                if not torch.isfinite(p).all():
                    self._flag(
                        trainer, f"non-finite parameter {name} at step {trainer.global_step}"
                    )
                    return

    @property
    def diverged(self) -> bool:
        return self.diverged_at_step is not None


def finite_or_none(x: float | None) -> float | None:
    return x if x is None or math.isfinite(x) else None
