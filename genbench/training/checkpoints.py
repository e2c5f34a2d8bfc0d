"""ModelCheckpoint for the best validation checkpoint, monitoring what the family selects on."""

from __future__ import annotations

from lightning.pytorch.callbacks import ModelCheckpoint


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
