"""Checkpoints: the best one by the family's validation metric, and crash-safe writes."""

from __future__ import annotations

import os
from pathlib import Path

from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO
from lightning.pytorch.callbacks import ModelCheckpoint

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

    def __init__(self, monitor: str = "auto", **kwargs):
        super().__init__(monitor=None if monitor == "auto" else monitor, **kwargs)
        self._auto = monitor == "auto"

    def setup(self, trainer, pl_module, stage: str) -> None:
        if self._auto:
            self.monitor = getattr(pl_module, "checkpoint_monitor", None)
            # Without a monitor, ModelCheckpoint would keep the newest file under this name.
            self.save_top_k = 1 if self.monitor else 0
        super().setup(trainer, pl_module, stage)
