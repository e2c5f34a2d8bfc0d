"""Lightning's WandbLogger, less an argument wandb warns about at every run."""

from __future__ import annotations

from collections.abc import Mapping

from lightning.pytorch.loggers import WandbLogger as LightningWandbLogger


class WandbLogger(LightningWandbLogger):
    """Lightning's WandbLogger (conf/logger/wandb.yaml) with two fixes to what it hands
    wandb.init: no `anonymous=None` (Lightning <= 2.6 always passes it, and wandb >= 0.19
    prints "The anonymous setting has no effect" for any value), and `settings` from the YAML
    as the plain dict wandb.init accepts (Hydra hands it a DictConfig)."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        init = self._wandb_init  # Lightning's own record of the wandb.init arguments
        if init.get("anonymous") is None:
            init.pop("anonymous", None)
        if isinstance(init.get("settings"), Mapping):
            init["settings"] = dict(init["settings"])
