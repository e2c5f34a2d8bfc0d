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
    # Image sampling: "cached" computes each activation once (GatedPixelCNN.cached); "naive"
    # reruns the network over rows <= i for every element. The same samples from the same
    # generator state; the benchmark script times both.
    samplers = ("cached", "naive")

    def __init__(
        self,
        spec: DataSpec | dict,
        hidden: int,
        layers: int,
        kernel: int,
        out_hidden: int,
        dropout: float,
        head: str,
        num_mixtures: int,
        points_hidden: int,
        points_layers: int,
        points_mixtures: int,
        optimizer: dict,
        scheduler: dict | None,
        sampler: str,
    ):
        super().__init__(spec)
        if sampler not in self.samplers:
            raise ValueError(f"model.sampler={sampler!r}; valid: {', '.join(self.samplers)}")
        self.sampler = sampler
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

    def nll_estimator(self) -> dict:
        return {"name": "exact (chain rule)"}

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        if not self.spec.is_image:
            return self._sample_points(n, generator)
        if self.sampler == "naive":
            return self.sample_naive(n, generator)
        return self.sample_cached(n, generator)

    @torch.no_grad()
    def sample_naive(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """n images (n, C, H, W) long, one network pass over rows <= i per element (eval mode)."""
        c, h, w = self.spec.shape
        x = torch.zeros(n, c, h, w, dtype=torch.long, device=self.device)
        was_training = self.net.training
        self.net.eval()  # no dropout while sampling
        try:
            for i in range(h):
                for j in range(w):
                    for k in range(c):
                        # Outputs of row i depend on rows <= i only: skip the rows below.
                        unit = self.to_unit(x[:, :, : i + 1]).to(self.dtype)
                        params = self.net(unit)[..., i, j]
                        x[:, k, i, j] = self.head.sample(params[:, :, k : k + 1], generator)[:, 0]
        finally:
            self.net.train(was_training)
        return x

    @torch.no_grad()
    def sample_cached(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """n images (n, C, H, W) long drawn like `sample_naive`, with the network's activations
        cached across elements (GatedPixelCNN.cached, inference only: no dropout): the same
        draws from the same generator state."""
        c, h, w = self.spec.shape
        x = torch.zeros(n, c, h, w, dtype=torch.long, device=self.device)
        unit = self.to_unit(x).to(self.dtype)  # the network's input, updated as x is drawn
        cache = self.net.cached(n, h, w)
        for i in range(h):
            for j in range(w):
                for k in range(c):
                    params = cache.pixel(i, j, unit[:, :, i])
                    x[:, k, i, j] = self.head.sample(params[:, :, k : k + 1], generator)[:, 0]
                    unit[:, k, i, j] = self.to_unit(x[:, k, i, j]).to(self.dtype)
            if i + 1 < h:  # the last row's vertical features would feed no row
                cache.end_row(i, unit[:, :, i])
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
        # One conditional per element (NFE = H*W*C for images, D for points), however computed.
        if not self.spec.is_image:
            return {"nfe": self.spec.num_dims, "sampler": "ancestral"}
        return {"nfe": self.spec.num_dims, "sampler": f"{self.sampler} ancestral"}

    # --- training -------------------------------------------------------------------------
    def training_step(self, batch, batch_idx: int) -> torch.Tensor:
        x = self.data(batch)
        nll = -self.log_prob(x)
        loss = nll.mean()
        self.log("train/nll_bpd", self.nats_to_bpd(nll).mean(), batch_size=len(x))
        return loss
