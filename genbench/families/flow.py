"""Normalizing flows: a multi-scale RealNVP/Glow for images, a RealNVP for points.

Images (nll_kind = "bound"): uniform dequantization y = (x + u) / K in [0, 1)^D, then a map into
model space whose log-det counts, then the flow. For K-level data
    log P(x) >= E_u[log p(y)] - D log K,
and `nll` returns the one-sample estimate of the right-hand side (negated), in nats.
Points (nll_kind = "exact"): the continuous density, by change of variables.
"""

from __future__ import annotations

import math

import torch

from genbench.core.spec import DataSpec
from genbench.families.base import GenerativeModule
from genbench.nets.flow_layers import AffineCoupling, MultiScaleFlow, PointFlow


class Flow(GenerativeModule):
    family = "flow"
    nll_kind = "bound"  # images; points set "exact" per instance (a true density)

    def __init__(
        self,
        spec: DataSpec | dict,
        hidden: int,
        depth: int,
        num_scales: int,
        steps: int,
        checkerboard_steps: int,
        preprocess: str,
        logit_alpha: float,
        points_hidden: int,
        points_layers: int,
        points_net_layers: int,
        optimizer: dict,
        grad_clip: float,
    ):
        super().__init__(spec)
        if preprocess not in ("logit", "affine"):
            raise ValueError(f"preprocess={preprocess!r}; valid: 'logit', 'affine'")
        s = self.spec
        if s.is_image:
            self.flow = MultiScaleFlow(
                s.shape, hidden, depth, num_scales, steps, checkerboard_steps
            )
        else:
            self.flow = PointFlow(s.num_dims, points_hidden, points_layers, points_net_layers)
            self.nll_kind = "exact"

    # --- data space <-> model space ---------------------------------------------------
    def to_model_space(self, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """y in [0, 1]^D -> (z, log|det dz/dy| summed per example (B,))."""
        if self.hparams.preprocess == "affine":  # z = 2y - 1 in [-1, 1]
            return 2 * y - 1, y.new_full((len(y),), self.spec.num_dims * math.log(2))
        a = self.hparams.logit_alpha
        p = a + (1 - 2 * a) * y
        z = torch.log(p) - torch.log1p(-p)
        # dz/dy = (1 - 2a) / (p (1 - p))
        logdet = (math.log(1 - 2 * a) - torch.log(p) - torch.log1p(-p)).flatten(1).sum(1)
        return z, logdet

    def from_model_space(self, z: torch.Tensor) -> torch.Tensor:
        if self.hparams.preprocess == "affine":
            return (z + 1) / 2
        a = self.hparams.logit_alpha
        return (torch.sigmoid(z) - a) / (1 - 2 * a)

    def log_prob(self, x: torch.Tensor, u: torch.Tensor | None = None) -> torch.Tensor:
        """Images: the one-sample dequantized lower bound on log P(x) with noise u ~ U[0,1)^D
        (drawn when None); points: log p(x). (B,) in nats."""
        if not self.spec.is_image:
            return self.flow.log_prob(x.to(self.dtype))
        k = self.spec.num_levels
        if u is None:
            u = torch.rand(x.shape, device=x.device, dtype=self.dtype)
        y = (x.to(u.dtype) + u) / k
        z, ld_pre = self.to_model_space(y)
        log_base, ld_flow = self.flow(z)
        return log_base + ld_flow + ld_pre - self.spec.num_dims * math.log(k)

    # --- GenerativeModule -----------------------------------------------------------
    def nll(self, batch) -> torch.Tensor:
        return -self.log_prob(self.data(batch))

    def nll_estimator(self) -> dict:
        if not self.spec.is_image:
            return {"name": "change of variables"}
        return {"name": "dequantised bound", "dequantisation_draws": 1}

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        def noise(shape):
            return torch.randn(n, *shape, generator=generator, device=self.device)

        if not self.spec.is_image:
            return self.flow.inverse(noise(self.spec.shape))
        z = self.flow.inverse_from_noise([noise(s) for s in self.flow.out_shapes])
        y = self.from_model_space(z)
        k = self.spec.num_levels
        return torch.floor(y * k).clamp(0, k - 1).long()

    def sampling_cost(self) -> dict:
        nfe = sum(isinstance(m, AffineCoupling) for m in self.modules())
        return {"nfe": nfe, "sampler": "inverse flow"}

    def latent_draw(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """n base draws (n, D), the multi-scale outputs' noise flattened (images)."""
        return torch.randn(n, self.spec.num_dims, generator=generator, device=self.device)

    @torch.no_grad()
    def decode_latent(self, z: torch.Tensor) -> torch.Tensor:
        """Images: the inverse flow of each flat base draw before rounding, in [0, 1]."""
        sizes = [math.prod(s) for s in self.flow.out_shapes]
        parts = [p.view(len(z), *s) for p, s in zip(z.split(sizes, 1), self.flow.out_shapes)]
        y = self.from_model_space(self.flow.inverse_from_noise(parts))
        return y.clamp(0, 1).view(len(z), *self.spec.shape)

    # --- training -------------------------------------------------------------------
    def training_step(self, batch, batch_idx: int) -> torch.Tensor:
        x = self.data(batch)
        nll = -self.log_prob(x)
        loss = nll.mean() / self.spec.num_dims  # per dimension: the scale does not grow with D
        bpd = self.nats_to_bpd(nll).mean()
        self.log_dict({"train/loss": loss, "train/nll_bpd": bpd}, batch_size=len(x))
        return loss

    def configure_gradient_clipping(
        self, optimizer, gradient_clip_val=None, gradient_clip_algorithm=None
    ) -> None:
        # Early couplings can spike; clip by default (the trainer's value wins when set).
        clip = gradient_clip_val or self.hparams.grad_clip
        if clip:
            torch.nn.utils.clip_grad_norm_(self.parameters(), clip)
