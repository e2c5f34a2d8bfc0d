"""Sample-quality checks logged at every validation, for every family, keyed by data set.

`SampleChecks` draws `num_samples` samples from a fixed generator (the same noise at every
validation, so successive values differ by the model alone) and logs the data set's checks:
8 gaussians -> val/modes_covered and val/high_quality_fraction (genbench.evaluation.modes).
"""

from __future__ import annotations

from collections.abc import Callable

import lightning as L
import torch

from genbench.evaluation.modes import mode_coverage

# data set name -> check(samples) -> {metric: value}; one explicit registry.
CHECKS: dict[str, Callable[[torch.Tensor], dict[str, float]]] = {
    "8gaussians": mode_coverage,
}


class SampleChecks(L.Callback):
    """Log the data set's sample checks under val/<name> at the end of each validation."""

    def __init__(self, num_samples: int, seed: int):
        self.num_samples, self.seed = num_samples, seed

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module) -> None:
        check = CHECKS.get(pl_module.spec.name)
        if check is None or trainer.sanity_checking or self.num_samples <= 0:
            return
        gen = torch.Generator(device=pl_module.device).manual_seed(self.seed)
        with torch.no_grad():
            samples = pl_module.sample(self.num_samples, generator=gen)
        for key, value in check(samples).items():
            pl_module.log(f"val/{key}", float(value), sync_dist=True)
