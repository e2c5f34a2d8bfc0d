"""Reference models that need no training, scored by the same evaluation as the families.

IndependentPixels: every pixel its own categorical distribution over the K levels, fitted by
counting the training split (+ `smoothing` per level). Its bits/dim is exact; it is the
likelihood any image model must beat by modelling how pixels depend on each other, and its
samples (each pixel drawn on its own) show what that likelihood buys in sample quality. It is
also the EBM's base q.
"""

from __future__ import annotations

import torch

from genbench.core.spec import DataSpec
from genbench.families.base import GenerativeModule
from genbench.maths.histogram import level_counts

BASELINE_FAMILY = "pixel-histogram"


class IndependentPixels(GenerativeModule):
    family = BASELINE_FAMILY
    nll_kind = "exact"
    checkpoint_monitor = None

    def __init__(self, spec: DataSpec | dict, smoothing: float):
        super().__init__(spec)
        if not self.spec.is_image:
            raise ValueError(f"{BASELINE_FAMILY}: data set {self.spec.name!r} is not images")
        if smoothing <= 0:
            raise ValueError(f"{BASELINE_FAMILY}: smoothing={smoothing} must be > 0")
        self.register_buffer("log_probs", torch.zeros(self.spec.num_dims, self.spec.num_levels))

    def fit(self, x: torch.Tensor) -> IndependentPixels:
        """Count the levels of every pixel over x (N, C, H, W) long: the maximum-likelihood fit,
        smoothed."""
        counts = level_counts(x.to(self.device), self.spec.num_levels).double()
        counts += self.hparams.smoothing
        self.log_probs = (counts / counts.sum(1, keepdim=True)).log().float()
        return self

    def nll(self, batch) -> torch.Tensor:
        x = self.data(batch).flatten(1)
        return -self.log_probs.double().gather(1, x.T).sum(0)

    def nll_estimator(self) -> dict:
        return {"name": "exact (independent pixels)"}

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        levels = torch.multinomial(self.log_probs.exp(), n, replacement=True, generator=generator)
        return levels.T.reshape(n, *self.spec.shape)

    def sampling_cost(self) -> dict:
        return {"nfe": 0, "sampler": "independent pixels"}
