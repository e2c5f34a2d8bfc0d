"""The per-pixel histogram density on [-1, 1]^D: the dequantised marginals of discrete data.

Level k of K is the bin [2k/K - 1, 2(k+1)/K - 1); the density is constant on each bin and
factorises over dimensions. It is the EBM's base for images, and uniform (K = 1) it is the
uniform density on the cube.
"""

from __future__ import annotations

import math

import torch


def level_counts(x: torch.Tensor, num_levels: int) -> torch.Tensor:
    """(D, K) counts of each level per dimension of x (N, ...) long in [0, K): one_hot(x).sum(0)
    without its N x D x K tensor (88 GB for MNIST's training split)."""
    flat = x.flatten(1)
    dims = flat.shape[1]
    cells = flat + num_levels * torch.arange(dims, device=flat.device)  # (dimension, level) ids
    return torch.bincount(cells.flatten(), minlength=dims * num_levels).view(dims, num_levels)


class HistogramBase:
    """Per-dimension piecewise-constant density on [-1, 1]^D with K equal bins.

    probs (D, K): the bin probabilities, rows summing to 1.
    """

    def __init__(self, probs: torch.Tensor):
        self.probs = probs
        self.num_levels = probs.shape[1]
        # Density per unit length: a bin of probability p has width 2 / K.
        self.log_density = torch.log(probs) + math.log(self.num_levels / 2)

    @classmethod
    def uniform(cls, num_dims: int, device: torch.device | str | None = None) -> HistogramBase:
        """The uniform density 2^-D on [-1, 1]^D."""
        return cls(torch.ones(num_dims, 1, device=device))

    def log_prob(self, y: torch.Tensor) -> torch.Tensor:
        """y (N, D) in [-1, 1] -> (N,) log density."""
        k = ((y + 1) / 2 * self.num_levels).floor().long().clamp(0, self.num_levels - 1)
        return self.log_density.gather(1, k.T).sum(0)

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """n exact draws (n, D) in [-1, 1]: a level per dimension, then uniform in its bin."""
        d, k = self.probs.shape
        idx = torch.multinomial(self.probs, n, replacement=True, generator=generator).T
        u = torch.rand(n, d, generator=generator, device=self.probs.device)
        return (idx + u) * (2 / k) - 1

    def icdf(self, u: torch.Tensor) -> torch.Tensor:
        """Per-dimension inverse CDF, (N, D) in [0, 1] -> (N, D) in [-1, 1]; differentiable in u.

        Piecewise linear and monotone: uniform u gives exact draws from this density, and the
        push-forward of exp(-E(icdf(u))) du is base(y) exp(-E(y)) dy.
        """
        k = self.num_levels
        cdf = torch.cumsum(self.probs, 1)  # (D, K): upper edges
        ut = u.T.contiguous()
        idx = torch.searchsorted(cdf.contiguous(), ut.detach(), right=True).clamp(max=k - 1)
        lower = torch.cat([torch.zeros_like(cdf[:, :1]), cdf[:, :-1]], 1).gather(1, idx)
        frac = ((ut - lower) / self.probs.gather(1, idx)).clamp(0, 1)
        return ((idx + frac) * (2 / k) - 1).T

    def level_nll(self, x: torch.Tensor) -> torch.Tensor:
        """Discrete NLL (N,) in nats of levels x (N, D) long in [0, K): -sum_d log probs[d, x_d]."""
        return -torch.log(self.probs).gather(1, x.T).sum(0)


def dequantize(
    x: torch.Tensor, num_levels: int, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Levels x (N, ...) long in [0, K) -> flat (N, D) floats, uniform in their bins of [-1, 1]."""
    u = torch.rand(x.shape, generator=generator, device=x.device)
    return ((x.float() + u) * (2 / num_levels) - 1).flatten(1)
