"""Convolutional encoder/decoder pairs that size themselves from the image shape."""

from __future__ import annotations

import torch
from torch import nn


def num_halvings(size: int, min_size: int = 4) -> int:
    """How many stride-2 steps take `size` down while it stays even and above `min_size`."""
    n = 0
    while size % 2 == 0 and size > min_size:
        size //= 2
        n += 1
    return n


class ConvEncoder(nn.Module):
    """(B, C, H, W) -> (B, out_dim): conv blocks halving H, W down to ~4, then a linear map."""

    def __init__(self, in_channels: int, image_size: int, out_dim: int, hidden: int):
        super().__init__()
        n = num_halvings(image_size)
        layers: list[nn.Module] = [nn.Conv2d(in_channels, hidden, 3, padding=1), nn.SiLU()]
        ch = hidden
        for i in range(n):
            out = hidden * 2 ** min(i + 1, 2)
            layers += [
                nn.Conv2d(ch, out, 4, stride=2, padding=1),
                nn.SiLU(),
                nn.Conv2d(out, out, 3, padding=1),
                nn.SiLU(),
            ]
            ch = out
        self.net = nn.Sequential(*layers, nn.Flatten())
        self.out = nn.Linear(ch * (image_size // 2**n) ** 2, out_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.net(x))


class ConvDecoder(nn.Module):
    """(B, in_dim) -> (B, out_channels, H, W): the mirror image of ConvEncoder."""

    def __init__(self, in_dim: int, image_size: int, out_channels: int, hidden: int):
        super().__init__()
        n = num_halvings(image_size)
        self.base = image_size // 2**n
        self.ch = hidden * 2 ** min(n, 2)
        self.inp = nn.Sequential(nn.Linear(in_dim, self.ch * self.base**2), nn.SiLU())
        layers: list[nn.Module] = []
        ch = self.ch
        for i in reversed(range(n)):
            out = hidden * 2 ** min(i, 2)
            layers += [
                nn.Conv2d(ch, ch, 3, padding=1),
                nn.SiLU(),
                nn.ConvTranspose2d(ch, out, 4, stride=2, padding=1),
                nn.SiLU(),
            ]
            ch = out
        layers += [nn.Conv2d(ch, ch, 3, padding=1), nn.SiLU(), nn.Conv2d(ch, out_channels, 1)]
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(self.inp(z).view(-1, self.ch, self.base, self.base))
