"""Distribution maths every family shares (improved-diffusion's losses.py, in one place).

Gaussian log-densities and KLs in nats, the discretised Gaussian over K levels, the map between
K-level data (long, 0..K-1) and [-1, 1] floats, and nats -> bits per dimension. All elementwise
unless the docstring says otherwise; float tensors keep their dtype.
"""

from __future__ import annotations

import math

import torch

LOG_2PI = math.log(2 * math.pi)


def gaussian_log_prob(
    x: torch.Tensor, mean: torch.Tensor | float, log_std: torch.Tensor | float
) -> torch.Tensor:
    """log N(x; mean, exp(log_std)^2) in nats, elementwise (broadcasting); mean=0, log_std=0 is
    the standard normal."""
    log_std = torch.as_tensor(log_std, dtype=x.dtype, device=x.device)
    return -0.5 * (((x - mean) * torch.exp(-log_std)) ** 2 + LOG_2PI) - log_std


def normal_kl(
    mean1: torch.Tensor,
    logvar1: torch.Tensor,
    mean2: torch.Tensor | float,
    logvar2: torch.Tensor | float,
) -> torch.Tensor:
    """KL(N(mean1, e^logvar1) || N(mean2, e^logvar2)) in nats, elementwise (broadcasting)."""
    logvar2 = torch.as_tensor(logvar2, dtype=mean1.dtype, device=mean1.device)
    return 0.5 * (
        -1.0
        + logvar2
        - logvar1
        + torch.exp(logvar1 - logvar2)
        + (mean1 - mean2) ** 2 * torch.exp(-logvar2)
    )


def log_normal_interval(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """log(Phi(b) - Phi(a)) for a < b (either may be infinite), accurate in both tails.

    Intervals right of 0 are reflected to the left (Phi(b) - Phi(a) = Phi(-a) - Phi(-b)), where
    log_ndtr is accurate; the difference is then log Phi(hi) + log(1 - exp(log Phi(lo) - log
    Phi(hi))), with no subtraction of two numbers near 1 (which underflows to 0 in float32)."""
    flip = a > 0
    lo, hi = torch.where(flip, -b, a), torch.where(flip, -a, b)
    log_hi, log_lo = torch.special.log_ndtr(hi), torch.special.log_ndtr(lo)
    return log_hi + torch.log(-torch.expm1((log_lo - log_hi).clamp(max=-1e-30)))


def discretized_gaussian_log_likelihood(
    x: torch.Tensor, mean: torch.Tensor, log_scale: torch.Tensor, num_levels: int
) -> torch.Tensor:
    """log P(x) of levels x (long in [0, K)) under N(mean, e^(2 log_scale)) binned on K levels.

    Level k is the interval of width 2/(K-1) around levels_to_unit(k) in [-1, 1]; the two end
    levels take the tails, so the K probabilities sum to one. Elementwise, in nats.
    """
    # Edges as the map of half-integer levels: bin k's upper edge is bit-for-bit bin k+1's lower
    # edge, so the K masses telescope to one even at scales far below float32's resolution.
    xf = x.to(mean.dtype)
    inv_std = torch.exp(-log_scale)
    inf = torch.tensor(math.inf, device=mean.device, dtype=mean.dtype)
    lo = (levels_to_unit(xf - 0.5, num_levels, mean.dtype) - mean) * inv_std
    hi = (levels_to_unit(xf + 0.5, num_levels, mean.dtype) - mean) * inv_std
    lo = torch.where(x == 0, -inf, lo)
    hi = torch.where(x == num_levels - 1, inf, hi)
    return log_normal_interval(lo, hi)


def levels_to_unit(
    x: torch.Tensor, num_levels: int, dtype: torch.dtype = torch.float32
) -> torch.Tensor:
    """Levels 0..K-1 (any dtype) -> floats in [-1, 1] of `dtype`: k -> 2k/(K-1) - 1."""
    return x.to(dtype) / (num_levels - 1) * 2 - 1


def unit_to_levels(y: torch.Tensor, num_levels: int) -> torch.Tensor:
    """Floats in [-1, 1] (clamped first) -> the nearest level, long in [0, K)."""
    return ((y.clamp(-1, 1) + 1) / 2 * (num_levels - 1)).round().long()


def bits_per_dim(nll_nats: torch.Tensor | float, num_dims: int) -> torch.Tensor | float:
    """bpd = nll_nats / (D ln 2), D = num_dims (a tensor elementwise, or a float)."""
    return nll_nats / (num_dims * math.log(2))
