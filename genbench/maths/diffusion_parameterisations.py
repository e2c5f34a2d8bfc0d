"""What a diffusion network predicts: eps, v or a posterior over x0's K levels ("grid").

A parameterisation turns the network's output at x_t into x0 and gives the training loss; the
process (gaussian_diffusion.py) and the samplers only ever see x0. A variant is a small subclass
overriding two methods (as in denoising-diffusion-pytorch), never a branch through the process.
Throughout, a = sqrt(alpha_bar_t) and s = sqrt(1 - alpha_bar_t) broadcast against x_t, so
x_t = a x0 + s eps.
"""

from __future__ import annotations

import torch
from torch import nn

from genbench.maths.distributions import levels_to_unit


class Parameterisation:
    """Base: the network regresses `target` with a per-example mean squared error."""

    def out_channels(self, channels: int) -> int:
        """Network output channels for data with `channels` channels."""
        return channels

    def x0(self, out: torch.Tensor, xt: torch.Tensor, a: torch.Tensor, s: torch.Tensor):
        """The predicted x0 (unclipped), shaped like xt, from the network output `out`."""
        raise NotImplementedError

    def target(self, x0: torch.Tensor, noise: torch.Tensor, a: torch.Tensor, s: torch.Tensor):
        """What the network regresses at x_t = a x0 + s noise."""
        raise NotImplementedError

    def loss(
        self,
        out: torch.Tensor,
        xt: torch.Tensor,
        a: torch.Tensor,
        s: torch.Tensor,
        x0: torch.Tensor,
        noise: torch.Tensor,
        x_data: torch.Tensor | None,
    ) -> torch.Tensor:
        """Per-example loss (B,): the mean squared error of the target (Ho et al.'s L_simple)."""
        return ((out - self.target(x0, noise, a, s)) ** 2).flatten(1).mean(1)


class EpsPrediction(Parameterisation):
    """The network predicts the noise eps (Ho et al., 2020)."""

    def x0(self, out, xt, a, s):
        return (xt - s * out) / a

    def target(self, x0, noise, a, s):
        return noise


class VPrediction(Parameterisation):
    """The network predicts v = a eps - s x0 (Salimans & Ho, 2022)."""

    def x0(self, out, xt, a, s):
        return a * xt - s * out

    def target(self, x0, noise, a, s):
        return a * noise - s * x0


class GridPrediction(Parameterisation):
    """K logits per pixel; with the exact log-likelihood log N(x_t; a c_k, s^2) of each level c_k
    they give a posterior over x0's level, whose mean is x0 (always inside [-1, 1]).

    With a flat network output this is the Bayes posterior of x0 for independent uniform levels;
    at noise below the half-bin width the likelihood snaps x0 onto the grid, which removes most
    of the bound's small-t terms (on digits ~2.8 -> ~2.0 bpd); at large noise the network's logits
    carry the image prior. The loss is the squared error of the eps implied by that x0, plus
    `ce_weight` times the mean cross-entropy of x0's level per pixel.
    """

    def __init__(self, num_levels: int, ce_weight: float):
        self.num_levels, self.ce_weight = num_levels, ce_weight

    def out_channels(self, channels: int) -> int:
        return channels * self.num_levels

    def _levels(self, xt: torch.Tensor) -> torch.Tensor:
        """The K level values, shaped (1, 1, K, 1, ...) against (B, C, K, ...)."""
        k = torch.arange(self.num_levels, device=xt.device)
        return levels_to_unit(k, self.num_levels, xt.dtype).view(1, 1, -1, *[1] * (xt.dim() - 2))

    def logits(self, out: torch.Tensor, xt: torch.Tensor, a: torch.Tensor, s: torch.Tensor):
        """(B, C, K, ...) logits of x0's level: the network's K logits per pixel plus the exact
        log-likelihood of x_t under each level (up to a constant)."""
        out = out.view(xt.shape[0], xt.shape[1], self.num_levels, *xt.shape[2:])
        diff = xt.unsqueeze(2) - a.unsqueeze(2) * self._levels(xt)
        return out - 0.5 * diff**2 / (s**2).unsqueeze(2)

    def x0(self, out, xt, a, s):
        return (torch.softmax(self.logits(out, xt, a, s), 2) * self._levels(xt)).sum(2)

    def loss(self, out, xt, a, s, x0, noise, x_data):
        logits = self.logits(out, xt, a, s)
        x0_hat = (torch.softmax(logits, 2) * self._levels(xt)).sum(2)
        loss = (((xt - a * x0_hat) / s - noise) ** 2).flatten(1).mean(1)
        if self.ce_weight > 0:
            ce = nn.functional.cross_entropy(logits.transpose(1, 2), x_data, reduction="none")
            loss = loss + self.ce_weight * ce.flatten(1).mean(1)
        return loss


PREDICTIONS = ("eps", "v", "grid")


def make_parameterisation(
    prediction: str, num_levels: int | None, ce_weight: float
) -> Parameterisation:
    """The parameterisation named `prediction`; "grid" needs discrete data (num_levels)."""
    if prediction == "eps":
        return EpsPrediction()
    if prediction == "v":
        return VPrediction()
    if prediction == "grid":
        if not num_levels:
            raise ValueError("prediction='grid' needs discrete data (num_levels); use 'eps'")
        return GridPrediction(num_levels, ce_weight)
    raise ValueError(f"prediction={prediction!r}; valid: {', '.join(map(repr, PREDICTIONS))}")
