"""Energy networks E(x) -> (B,): smooth activations, because SGLD and AIS follow dE/dx."""

from __future__ import annotations

import torch
from torch import nn

from genbench.nets.conv import num_halvings
from genbench.nets.mlp import ScalarMLP, maybe_spectral_norm


class ConvEnergy(nn.Module):
    """(B, C, H, W) in [-1, 1] -> (B,) energy: stride-2 conv blocks with SiLU, then linear.

    zero_init (without spectral_norm) zeroes the last layer, so E == 0 until trained."""

    def __init__(
        self,
        in_channels: int,
        image_size: int,
        hidden: int,
        spectral_norm: bool,
        zero_init: bool,
    ):
        super().__init__()
        n = num_halvings(image_size)
        layers: list[nn.Module] = [
            maybe_spectral_norm(nn.Conv2d(in_channels, hidden, 3, padding=1), spectral_norm),
            nn.SiLU(),
        ]
        ch = hidden
        for i in range(n):
            out = hidden * 2 ** min(i + 1, 2)
            layers += [
                maybe_spectral_norm(nn.Conv2d(ch, out, 4, stride=2, padding=1), spectral_norm),
                nn.SiLU(),
                maybe_spectral_norm(nn.Conv2d(out, out, 3, padding=1), spectral_norm),
                nn.SiLU(),
            ]
            ch = out
        layers += [
            nn.Flatten(),
            maybe_spectral_norm(nn.Linear(ch * (image_size // 2**n) ** 2, 1), spectral_norm),
        ]
        if zero_init and not spectral_norm:  # E == 0: a residual energy starts at its base
            nn.init.zeros_(layers[-1].weight)
            nn.init.zeros_(layers[-1].bias)
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).squeeze(-1)


class MLPEnergy(ScalarMLP):
    """(B, D) -> (B,) energy for points: SiLU hidden layers (smooth, for SGLD)."""

    def __init__(self, dim: int, hidden: int, layers: int, spectral_norm: bool):
        super().__init__(dim, hidden, layers, spectral_norm, act=nn.SiLU)
