"""Checkpoints: the best one by the family's validation metric, and crash-safe writes."""

from __future__ import annotations

import os
from pathlib import Path

from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO
from lightning.pytorch.callbacks import ModelCheckpoint

from genbench.core.atomic import atomic_write
from genbench.core.checkpoints import load_checkpoint


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

    def load_state_dict(self, state_dict: dict) -> None:
        """Restore from a (last) checkpoint; if the best file it names is gone — a run killed
        after a newer best replaced it but before last.ckpt recorded that — adopt the best file
        that is on disk, with the score its own saved state records, as an uninterrupted run
        would have it."""
        super().load_state_dict(state_dict)
        if not self.best_model_path or Path(self.best_model_path).is_file() or not self.dirpath:
            return
        found = sorted(Path(self.dirpath).glob("best_step*.ckpt"))
        if len(found) != 1:
            return
        saved = load_checkpoint(found[0])
        mine = [
            v for k, v in saved.get("callbacks", {}).items() if k.startswith(type(self).__name__)
        ]
        if len(mine) == 1 and mine[0].get("best_model_path") == str(found[0]):
            self.best_model_path = str(found[0])
            self.best_model_score = mine[0]["best_model_score"]
            self.best_k_models = {self.best_model_path: self.best_model_score}
            self.kth_best_model_path, self.kth_value = self.best_model_path, self.best_model_score

    def setup(self, trainer, pl_module, stage: str) -> None:
        if self._auto:
            self.monitor = getattr(pl_module, "checkpoint_monitor", None)
            # Without a monitor, ModelCheckpoint would keep the newest file under this name.
            self.save_top_k = 1 if self.monitor else 0
        super().setup(trainer, pl_module, stage)
