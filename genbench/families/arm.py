"""Autoregressive models: a gated PixelCNN for images, MADE with a mixture per dimension for points.

Both give the exact likelihood (nll_kind = "exact"): images through a discrete head per element
(categorical or discretized logistic mixture), points through a Gaussian mixture per coordinate.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from genbench.core.spec import DataSpec
from genbench.families.base import GenerativeModule
from genbench.maths.distributions import gaussian_log_prob
from genbench.nets.discrete import make_head
from genbench.nets.masked import MADE, GatedPixelCNN


class ARM(GenerativeModule):
    family = "arm"
    nll_kind = "exact"

    def __init__(
        self,
        spec: DataSpec | dict,
        hidden: int = 32,
        layers: int = 6,
        kernel: int = 5,
        out_hidden: int = 64,
        dropout: float = 0.3,
        head: str = "categorical",
        num_mixtures: int = 5,
        points_hidden: int = 256,
        points_layers: int = 3,
        points_mixtures: int = 8,
        lr: float = 1e-3,
        weight_decay: float = 0.0,
        lr_decay_steps: int = 0,
    ):
        super().__init__(spec)
        s = self.spec
        if s.is_image:
            self.head = make_head(head, s.num_levels, num_mixtures)
            self.net = GatedPixelCNN(
                s.shape[0], self.head.num_params, hidden, layers, kernel, out_hidden, dropout
            )
        else:
            self.num_mix = points_mixtures
            self.net = MADE(s.num_dims, 3 * points_mixtures, points_hidden, points_layers)

    # --- points: a Gaussian mixture per coordinate -------------------------------------
    def _mixture(self, x: torch.Tensor):
        """(logit weights, means, log stds), each (B, M, D), of every coordinate's conditional."""
        logits, means, log_std = self.net(x).split(self.num_mix, dim=1)
        return F.log_softmax(logits, dim=1), means, log_std.clamp(-7, 5)

    def points_log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """log p(x) of points x (B, D) -> (B,) in nats."""
        log_w, mean, log_std = self._mixture(x)
        log_comp = gaussian_log_prob(x.unsqueeze(1), mean, log_std)
        return torch.logsumexp(log_w + log_comp, dim=1).sum(1)

    # --- GenerativeModule ---------------------------------------------------------------
    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """Exact log-likelihood (B,) in nats of images (B, C, H, W) long or points (B, D)."""
        if not self.spec.is_image:
            return self.points_log_prob(x.to(self.dtype))
        params = self.net(self.to_unit(x).to(self.dtype))
        return self.head.log_prob(params, x).flatten(1).sum(1)

    def nll(self, batch) -> torch.Tensor:
        return -self.log_prob(self.data(batch))

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        if not self.spec.is_image:
            return self._sample_points(n, generator)
        c, h, w = self.spec.shape
        x = torch.zeros(n, c, h, w, dtype=torch.long, device=self.device)
        for i in range(h):
            for j in range(w):
                for k in range(c):
                    # Outputs of row i depend on rows <= i only: skip the rows below.
                    params = self.net(self.to_unit(x[:, :, : i + 1]).to(self.dtype))[..., i, j]
                    x[:, k, i, j] = self.head.sample(params[:, :, k : k + 1], generator)[:, 0]
        return x

    def _sample_points(self, n: int, generator: torch.Generator | None) -> torch.Tensor:
        d = self.spec.num_dims
        x = torch.zeros(n, d, device=self.device)
        for i in range(d):
            log_w, mean, log_std = (t[:, :, i] for t in self._mixture(x))
            comp = torch.multinomial(log_w.exp(), 1, generator=generator)
            eps = torch.randn(n, 1, generator=generator, device=self.device)
            x[:, i] = (mean.gather(1, comp) + log_std.gather(1, comp).exp() * eps)[:, 0]
        return x

    def sampling_cost(self) -> dict:
        return {"nfe": self.spec.num_dims}  # H*W*C for images, D for points

    # --- training -------------------------------------------------------------------------
    def training_step(self, batch, batch_idx: int) -> torch.Tensor:
        x = self.data(batch)
        nll = -self.log_prob(x)
        loss = nll.mean()
        self.log("train/nll_bpd", self.nats_to_bpd(nll).mean(), batch_size=len(x))
        return loss

    def configure_optimizers(self):
        opt = torch.optim.Adam(
            self.parameters(), lr=self.hparams.lr, weight_decay=self.hparams.weight_decay
        )
        if self.hparams.lr_decay_steps <= 0:
            return opt
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, self.hparams.lr_decay_steps)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}
