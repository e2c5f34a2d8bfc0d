"""Fully connected building blocks."""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm as _spectral_norm


def mlp(
    in_dim: int, out_dim: int, hidden: int, layers: int, act: type[nn.Module] = nn.SiLU
) -> nn.Sequential:
    """`layers` hidden layers of width `hidden`, then a linear output."""
    mods: list[nn.Module] = []
    d = in_dim
    for _ in range(layers):
        mods += [nn.Linear(d, hidden), act()]
        d = hidden
    mods.append(nn.Linear(d, out_dim))
    return nn.Sequential(*mods)


def timestep_embedding(t: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:
    """Sinusoidal embedding of (B,) times (integers or floats) -> (B, dim)."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, device=t.device) / half)
    args = t.float()[:, None] * freqs[None]
    emb = torch.cat([torch.cos(args), torch.sin(args)], dim=-1)
    return torch.nn.functional.pad(emb, (0, dim % 2))


def maybe_spectral_norm(module: nn.Module, on: bool) -> nn.Module:
    return _spectral_norm(module) if on else module


class ScalarMLP(nn.Module):
    """(B, D) -> (B,): `layers` hidden layers of `act`, optional spectral normalisation.

    The points critic of the GAN and the points energy of the EBM."""

    def __init__(
        self,
        dim: int,
        hidden: int,
        layers: int,
        spectral_norm: bool,
        act: type[nn.Module] = nn.SiLU,
    ):
        super().__init__()
        mods: list[nn.Module] = []
        d = dim
        for _ in range(layers):
            mods += [maybe_spectral_norm(nn.Linear(d, hidden), spectral_norm), act()]
            d = hidden
        mods.append(maybe_spectral_norm(nn.Linear(d, 1), spectral_norm))
        self.net = nn.Sequential(*mods)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).squeeze(-1)
