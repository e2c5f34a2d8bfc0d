"""Checkpoints: the best one by the family's validation metric, the one a killed run resumes
from, and crash-safe writes."""

from __future__ import annotations

import os
from pathlib import Path

import lightning as L
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO
from lightning.pytorch.callbacks import Checkpoint, ModelCheckpoint
from lightning.pytorch.trainer.states import TrainerFn

from genbench.core.atomic import atomic_write


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning's torch.save checkpoints, written atomically (a temporary file, fsync,
    os.replace), so a run killed mid-write never leaves a truncated checkpoint; the replaced
    last.ckpt is kept as last.prev.ckpt, a fallback should last.ckpt ever be unreadable."""

    def save_checkpoint(self, checkpoint: dict, path, storage_options=None) -> None:
        path = Path(path)

        def write(tmp: str) -> None:
            super(AtomicCheckpointIO, self).save_checkpoint(checkpoint, tmp, storage_options)
            if path.name == "last.ckpt" and path.exists():
                os.replace(path, path.with_name("last.prev.ckpt"))

        atomic_write(path, write)


class BestCheckpoint(ModelCheckpoint):
    """Keep the checkpoint that is best on the family's `checkpoint_monitor` (e.g. val/nll_bpd,
    or val/fid for a family without a likelihood); with monitor="auto" that metric is read from
    the module at setup. A family whose monitor is None gets no best checkpoint."""

    def __init__(self, monitor: str, **kwargs):
        super().__init__(monitor=None if monitor == "auto" else monitor, **kwargs)
        self._auto = monitor == "auto"

    def setup(self, trainer, pl_module, stage: str) -> None:
        if self._auto:
            self.monitor = getattr(pl_module, "checkpoint_monitor", None)
            # Without a monitor, ModelCheckpoint would keep the newest file under this name.
            if not self.monitor:
                self.save_top_k = 0
        super().setup(trainer, pl_module, stage)


def validation_follows(trainer: L.Trainer) -> bool:
    """Whether Lightning runs a validation right after the current training batch, asked from
    on_train_batch_end: the training epoch loop's own test, which it asks again before
    validating (a private API: tests/training/test_checkpoints.py pins it)."""
    loop = trainer.fit_loop.epoch_loop
    return bool(loop._should_check_val_fx(trainer.fit_loop._data_fetcher))


class LastCheckpoint(Checkpoint):
    """`dirpath/last.ckpt`, what a killed run resumes from: written after every validation and,
    when `every_n_train_steps` is set, every that many optimiser steps.

    A step whose validation runs right after its training batch is written at the end of that
    validation, not before it. Lightning resumes a checkpoint written at a training batch's end as
    "this batch done, its validation done too" and goes on without validating, so a file written
    before a validation would lose that validation as a best-checkpoint candidate, and the best
    checkpoint's bookkeeping would predate it. Written after it (after the best checkpoint, which
    Lightning orders before this callback as the config lists it first), the file holds what an
    uninterrupted run holds when it goes on, and Lightning resumes it without validating again.
    """

    def __init__(self, dirpath: str, every_n_train_steps: int | None = None):
        if every_n_train_steps is not None and every_n_train_steps < 1:
            raise ValueError(
                f"callbacks.last_checkpoint.every_n_train_steps={every_n_train_steps}; "
                "valid: a positive int, or null (after validations only)"
            )
        self.dirpath, self.every = Path(dirpath), every_n_train_steps
        self._saved_at: int | None = None

    @property
    def path(self) -> Path:
        return self.dirpath / "last.ckpt"

    def _save(self, trainer: L.Trainer) -> None:
        if (
            trainer.state.fn != TrainerFn.FITTING
            or trainer.sanity_checking
            or trainer.fast_dev_run
            or self._saved_at == trainer.global_step
        ):
            return
        trainer.save_checkpoint(self.path, weights_only=False)  # full state; and no log line
        self._saved_at = trainer.global_step

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx: int) -> None:
        if self.every and trainer.global_step % self.every == 0 and not validation_follows(trainer):
            self._save(trainer)

    def on_validation_end(self, trainer, pl_module) -> None:
        self._save(trainer)
