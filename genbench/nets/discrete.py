"""Output distributions over K-level discrete data: categorical and discretized logistic mixture.

Both take parameters shaped (B, P, *S) for data x long (B, *S) in [0, K) and return
per-element log-probabilities (B, *S) in nats, so they serve a VAE decoder and a PixelCNN alike.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from genbench.maths.distributions import levels_to_unit, unit_to_levels


class CategoricalHead:
    """A free categorical over the K levels of every element: P = K logits."""

    def __init__(self, num_levels: int):
        self.num_levels = num_levels
        self.num_params = num_levels

    def log_prob(self, params: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return -F.cross_entropy(params, x, reduction="none")

    def sample(
        self, params: torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        logits = params.movedim(1, -1)
        flat = torch.softmax(logits.reshape(-1, self.num_levels).float(), -1)
        out = torch.multinomial(flat, 1, generator=generator)
        return out.view(logits.shape[:-1])

    def mean(self, params: torch.Tensor) -> torch.Tensor:
        """The expected level of every element, in [0, 1]: sum_k P(k) k / (K - 1)."""
        probs = torch.softmax(params.float(), 1)
        levels = torch.arange(self.num_levels, device=params.device, dtype=probs.dtype)
        return (probs * levels.view(1, -1, *[1] * (params.dim() - 2))).sum(1) / (
            self.num_levels - 1
        )


class DiscretizedLogisticMixtureHead:
    """PixelCNN++'s discretized logistic mixture on the grid of K levels in [-1, 1]: P = 3M."""

    def __init__(self, num_levels: int, num_mixtures: int):
        self.num_levels = num_levels
        self.num_mixtures = num_mixtures
        self.num_params = 3 * num_mixtures

    def _split(self, params: torch.Tensor):
        m = self.num_mixtures
        logits, means, log_scales = params[:, :m], params[:, m : 2 * m], params[:, 2 * m :]
        return logits, means, log_scales.clamp(min=-7.0)

    def log_prob(self, params: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        logits, means, log_scales = self._split(params.float())
        k = self.num_levels
        xs = levels_to_unit(x, k).unsqueeze(1)  # (B, 1, *S) in [-1, 1]
        half_bin = 1.0 / (k - 1)
        centered = xs - means
        inv_s = torch.exp(-log_scales)
        plus_in = inv_s * (centered + half_bin)
        min_in = inv_s * (centered - half_bin)
        log_cdf_plus = plus_in - F.softplus(plus_in)  # log sigmoid(plus_in)
        log_one_minus_cdf_min = -F.softplus(min_in)  # log (1 - sigmoid(min_in))
        # log(sigmoid(a) - sigmoid(b)) = log sigmoid(a) + log(1 - exp(b - a)) + log sigmoid(-b)
        log_delta = (
            log_cdf_plus
            + torch.log(-torch.expm1(min_in - plus_in).clamp(max=-1e-12))
            - F.softplus(min_in)
        )
        mid_in = inv_s * centered
        log_pdf_mid = (
            mid_in
            - log_scales
            - 2.0 * F.softplus(mid_in)
            + torch.log(torch.tensor(2 * half_bin, device=x.device))
        )
        # Where the bin mass underflows, fall back to density x bin width (as PixelCNN++ does).
        log_mid = torch.where(log_delta > -30.0, log_delta, log_pdf_mid)
        log_probs = torch.where(
            xs < -0.999, log_cdf_plus, torch.where(xs > 0.999, log_one_minus_cdf_min, log_mid)
        )
        return torch.logsumexp(log_probs + F.log_softmax(logits, dim=1), dim=1)

    def sample(
        self, params: torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        logits, means, log_scales = self._split(params.float())
        probs = torch.softmax(logits.movedim(1, -1), -1)
        comp = torch.multinomial(probs.reshape(-1, self.num_mixtures), 1, generator=generator)
        comp = comp.view(probs.shape[:-1]).unsqueeze(1)
        mu = means.gather(1, comp).squeeze(1)
        s = log_scales.gather(1, comp).squeeze(1).exp()
        u = torch.rand(mu.shape, generator=generator, device=mu.device).clamp(1e-5, 1 - 1e-5)
        y = mu + s * (torch.log(u) - torch.log1p(-u))
        return unit_to_levels(y, self.num_levels)

    def mean(self, params: torch.Tensor) -> torch.Tensor:
        """The mixture's mean sum_m pi_m mu_m of every element (a logistic's mean is its
        location), from [-1, 1] to [0, 1], clipped to the grid's range."""
        logits, means, _ = self._split(params.float())
        mu = (torch.softmax(logits, 1) * means).sum(1)
        return ((mu + 1) / 2).clamp(0, 1)


def make_head(kind: str, num_levels: int, num_mixtures: int):
    """The discrete output head named `kind` ('categorical' or 'logistic_mixture')."""
    if kind == "categorical":
        return CategoricalHead(num_levels)
    if kind == "logistic_mixture":
        return DiscretizedLogisticMixtureHead(num_levels, num_mixtures)
    raise ValueError(f"unknown discrete head {kind!r}; valid: 'categorical', 'logistic_mixture'")
