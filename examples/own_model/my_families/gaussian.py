"""A diagonal Gaussian on points: the smallest GenerativeModule, with an exact likelihood."""

from __future__ import annotations

import math

import torch

from genbench.families.base import GenerativeModule


class DiagonalGaussian(GenerativeModule):
    """x ~ N(mean, diag(std^2)) over the data's D dimensions; for points (moons, 8gaussians,
    checkerboard, spirals), whose NLL is of the density."""

    family = "diag_gaussian"  # the family column of results.json and the tables
    nll_kind = "exact"

    def __init__(self, spec, optimizer, scheduler):
        # No defaults here: conf/model/diag_gaussian.yaml holds them. The base class keeps the
        # constructor's arguments as hyper-parameters (checkpoints, configure_optimizers).
        super().__init__(spec)
        if self.spec.is_image:
            raise ValueError(f"diag_gaussian is for points; {self.spec.name} is images")
        self.mean = torch.nn.Parameter(torch.zeros(self.spec.num_dims))
        self.log_std = torch.nn.Parameter(torch.zeros(self.spec.num_dims))

    def nll(self, batch) -> torch.Tensor:
        """Per-example NLL (B,) in nats."""
        x = self.data(batch).float()
        z = (x - self.mean) * torch.exp(-self.log_std)
        return (0.5 * z**2 + self.log_std + 0.5 * math.log(2 * math.pi)).sum(1)

    def nll_estimator(self) -> dict:
        """What nll computes (results.json's nll_estimator; validation selects with the same)."""
        return {"name": "exact (Gaussian density)"}

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """n samples, float (n, D)."""
        eps = torch.randn(n, self.spec.num_dims, generator=generator, device=self.device)
        return self.mean + self.log_std.exp() * eps

    def sampling_cost(self) -> dict:
        return {"nfe": 1, "sampler": "affine"}

    def training_step(self, batch, batch_idx: int) -> torch.Tensor:
        loss = self.nll(batch).mean()
        self.log("train/loss", loss)
        return loss
