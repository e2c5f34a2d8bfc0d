"""Variational autoencoder: Gaussian latent, discrete decoder for images, Gaussian for points.

`nll` is the importance-weighted bound (Burda et al., 2016) with `iw_samples` samples;
iw_samples=1 is the ELBO. Both are upper bounds on the NLL, so nll_kind = "bound". Validation
scores the same bound (the gap between the ELBO and IWAE-k changes during training, so the ELBO
ranks checkpoints differently).
"""

from __future__ import annotations

import math

import torch

from genbench.core.spec import DataSpec
from genbench.families.base import GenerativeModule
from genbench.maths.distributions import gaussian_log_prob, normal_kl
from genbench.nets.conv import ConvDecoder, ConvEncoder
from genbench.nets.discrete import make_head
from genbench.nets.mlp import mlp


class VAE(GenerativeModule):
    family = "vae"
    nll_kind = "bound"

    def __init__(
        self,
        spec: DataSpec | dict,
        latent_dim: int,
        hidden: int,
        points_hidden: int,
        decoder: str,
        num_mixtures: int,
        iw_samples: int,
        iw_chunk: int,
        kl_warmup_steps: int,
        optimizer: dict,
    ):
        super().__init__(spec)
        self.latent_dim, self.iw_samples, self.iw_chunk = latent_dim, iw_samples, iw_chunk
        if iw_samples < 1:
            raise ValueError(f"iw_samples={iw_samples} must be >= 1")
        s = self.spec
        if s.is_image:
            c, h, _ = s.shape
            self.head = make_head(decoder, s.num_levels, num_mixtures)
            self.encoder = ConvEncoder(c, h, 2 * latent_dim, hidden)
            self.decoder = ConvDecoder(latent_dim, h, c * self.head.num_params, hidden)
        else:
            d = s.num_dims
            # Three hidden layers, as in every recorded run (no YAML key: one would change
            # every VAE run's config hash).
            self.encoder = mlp(d, 2 * latent_dim, points_hidden, layers=3)
            self.decoder = mlp(latent_dim, 2 * d, points_hidden, layers=3)

    # --- model pieces ---------------------------------------------------------------
    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mean, log_std = self.encoder(self.to_unit(x)).chunk(2, dim=-1)
        return mean, log_std.clamp(-8, 4)

    def decode_log_prob(self, z: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """log p(x | z) summed over dimensions: z (N, L), x (N, *shape) -> (N,)."""
        out = self.decoder(z)
        if self.spec.is_image:
            params = out.view(len(z), self.head.num_params, *self.spec.shape)
            return self.head.log_prob(params, x).flatten(1).sum(1)
        mean, log_std = out.chunk(2, dim=-1)
        return gaussian_log_prob(x, mean, log_std.clamp(-7, 3)).sum(1)

    def log_weights(self, x: torch.Tensor, k: int) -> torch.Tensor:
        """log p(x, z_i) - log q(z_i | x) for k samples z_i ~ q: (B, k)."""
        mean, log_std = self.encode(x)
        z = mean + log_std.exp() * torch.randn(k, *mean.shape, device=x.device, dtype=mean.dtype)
        log_q = gaussian_log_prob(z, mean, log_std).sum(-1)
        log_prior = gaussian_log_prob(z, 0.0, 0.0).sum(-1)
        xs = x.unsqueeze(0).expand(k, *x.shape).reshape(-1, *x.shape[1:])
        log_px = self.decode_log_prob(z.reshape(-1, self.latent_dim), xs).view(k, -1)
        return (log_px + log_prior - log_q).T

    def elbo_terms(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(reconstruction log-likelihood, KL(q || p)) per example, each (B,) in nats."""
        mean, log_std = self.encode(x)
        z = mean + log_std.exp() * torch.randn_like(mean)
        kl = normal_kl(mean, 2 * log_std, 0.0, 0.0).sum(-1)
        return self.decode_log_prob(z, x), kl

    # --- GenerativeModule -----------------------------------------------------------
    def nll(self, batch) -> torch.Tensor:
        x = self.data(batch)
        chunks = []
        remaining = self.iw_samples
        while remaining > 0:
            k = min(self.iw_chunk, remaining)
            chunks.append(self.log_weights(x, k))
            remaining -= k
        log_w = torch.cat(chunks, dim=1)
        return -(torch.logsumexp(log_w, dim=1) - math.log(self.iw_samples))

    def nll_estimator(self) -> dict:
        name = "ELBO" if self.iw_samples == 1 else f"IWAE-{self.iw_samples}"
        return {"name": name, "iw_samples": self.iw_samples}

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        z = torch.randn(n, self.latent_dim, generator=generator, device=self.device)
        out = self.decoder(z)
        if self.spec.is_image:
            return self.head.sample(out.view(n, self.head.num_params, *self.spec.shape), generator)
        mean, log_std = out.chunk(2, dim=-1)
        eps = torch.randn(mean.shape, generator=generator, device=self.device)
        return mean + log_std.clamp(-7, 3).exp() * eps

    def sampling_cost(self) -> dict:
        return {"nfe": 1, "sampler": "decoder"}

    def latent_draw(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """n prior draws z (n, latent_dim): the latent `sample` decodes."""
        return torch.randn(n, self.latent_dim, generator=generator, device=self.device)

    @torch.no_grad()
    def decode_latent(self, z: torch.Tensor) -> torch.Tensor:
        """Images: the decoder's mean image of each z, (n, C, H, W) in [0, 1]."""
        params = self.decoder(z).view(len(z), self.head.num_params, *self.spec.shape)
        return self.head.mean(params)

    # --- training -------------------------------------------------------------------
    def training_step(self, batch, batch_idx: int) -> torch.Tensor:
        x = self.data(batch)
        rec, kl = self.elbo_terms(x)
        warm = self.hparams.kl_warmup_steps
        beta = min(1.0, (self.global_step + 1) / warm) if warm > 0 else 1.0
        loss = (beta * kl - rec).mean()
        bpd = self.nats_to_bpd(kl - rec).mean()
        self.log_dict(
            {"train/loss": loss, "train/elbo_bpd": bpd, "train/kl": kl.mean()},
            prog_bar=False,
            batch_size=len(x),
        )
        return loss
