"""DCGAN generator and discriminator that size themselves from the image shape (8x8 to 32x32)."""

from __future__ import annotations

import torch
from torch import nn

from genbench.nets.conv import num_halvings
from genbench.nets.mlp import ScalarMLP, maybe_spectral_norm


class DCGANGenerator(nn.Module):
    """(B, latent_dim) -> (B, C, H, W) in [-1, 1]: linear to ~4x4, then stride-2 upsampling."""

    def __init__(self, latent_dim: int, out_channels: int, image_size: int, hidden: int):
        super().__init__()
        n = num_halvings(image_size)
        self.base = image_size // 2**n
        self.ch = hidden * 2**n
        self.inp = nn.Sequential(
            nn.Linear(latent_dim, self.ch * self.base**2),
            nn.Unflatten(1, (self.ch, self.base, self.base)),
            nn.BatchNorm2d(self.ch),
            nn.ReLU(),
        )
        layers: list[nn.Module] = []
        ch = self.ch
        for _ in range(n):
            layers += [
                nn.ConvTranspose2d(ch, ch // 2, 4, stride=2, padding=1),
                nn.BatchNorm2d(ch // 2),
                nn.ReLU(),
            ]
            ch //= 2
        layers += [nn.Conv2d(ch, out_channels, 3, padding=1), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(self.inp(z))


class DCGANDiscriminator(nn.Module):
    """(B, C, H, W) -> (B,) critic score: stride-2 convs with LeakyReLU, no batch norm.

    No batch norm so the WGAN-GP penalty (per-example gradients) stays valid; spectral
    normalisation of every layer is an option.
    """

    def __init__(self, in_channels: int, image_size: int, hidden: int, spectral_norm: bool):
        super().__init__()
        n = num_halvings(image_size)
        layers: list[nn.Module] = [
            maybe_spectral_norm(nn.Conv2d(in_channels, hidden, 3, padding=1), spectral_norm),
            nn.LeakyReLU(0.2),
        ]
        ch = hidden
        for _ in range(n):
            layers += [
                maybe_spectral_norm(nn.Conv2d(ch, ch * 2, 4, stride=2, padding=1), spectral_norm),
                nn.LeakyReLU(0.2),
            ]
            ch *= 2
        layers += [
            nn.Flatten(),
            maybe_spectral_norm(nn.Linear(ch * (image_size // 2**n) ** 2, 1), spectral_norm),
        ]
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).squeeze(-1)


class MLPDiscriminator(ScalarMLP):
    """(B, D) -> (B,) critic for points: LeakyReLU(0.2) hidden layers."""

    def __init__(self, dim: int, hidden: int, layers: int, spectral_norm: bool):
        super().__init__(dim, hidden, layers, spectral_norm, act=_LeakyReLU)


class _LeakyReLU(nn.LeakyReLU):
    def __init__(self):
        super().__init__(0.2)
