"""Masked networks for autoregressive models: a gated PixelCNN (images) and MADE (vectors).

Autoregressive order for images: raster order over pixels, and within a pixel the channels
0, 1, ..., C-1. Feature channels are split into C interleaved groups (channel j belongs to group
j % C); group g at a pixel may see input groups < g ("A", the first layer) or <= g ("B", later
layers) at that same pixel, and everything at earlier pixels.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def channel_mask(out_ch: int, in_ch: int, groups: int, kind: str) -> torch.Tensor:
    """(out_ch, in_ch) 0/1 mask: output group g sees input group h if h < g (A) or h <= g (B)."""
    g_out = torch.arange(out_ch) % groups
    g_in = torch.arange(in_ch) % groups
    if kind == "A":
        return (g_in[None, :] < g_out[:, None]).float()
    return (g_in[None, :] <= g_out[:, None]).float()


class MaskedConv2d(nn.Conv2d):
    """Conv2d whose weight is multiplied by a fixed 0/1 mask (out, in, kh, kw)."""

    def __init__(self, in_ch: int, out_ch: int, kernel_size, mask: torch.Tensor, **kw):
        super().__init__(in_ch, out_ch, kernel_size, **kw)
        self.register_buffer("mask", mask.expand_as(self.weight).clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._conv_forward(x, self.weight * self.mask, self.bias)


def _center_masked(in_ch, out_ch, kernel, groups, kind) -> MaskedConv2d:
    """A conv whose LAST kernel position is the current pixel: channel-masked there only."""
    kh, kw = kernel
    mask = torch.ones(out_ch, in_ch, kh, kw)
    mask[:, :, -1, -1] = channel_mask(out_ch, in_ch, groups, kind)
    return MaskedConv2d(in_ch, out_ch, kernel, mask)


def _gate(x: torch.Tensor) -> torch.Tensor:
    a, b = x.chunk(2, dim=1)  # both halves keep the interleaved groups since F % C == 0
    return torch.tanh(a) * torch.sigmoid(b)


class GatedBlock(nn.Module):
    """One gated PixelCNN layer (van den Oord et al., 2016): vertical + horizontal stacks.

    The vertical stack sees rows <= r (any column); it reaches the horizontal stack shifted down
    one row, so pixel (r, c) gets rows < r from it and pixels (r, < c) from the horizontal stack:
    no blind spot.
    """

    def __init__(
        self, in_ch: int, hidden: int, kernel: int, groups: int, first: bool, dropout: float = 0.0
    ):
        super().__init__()
        self.drop = nn.Dropout(dropout)  # per feature, so it respects the causal masks
        self.k, self.first = kernel, first
        kind = "A" if first else "B"
        half = kernel // 2
        self.v_conv = nn.Conv2d(in_ch, 2 * hidden, (half + 1, kernel))
        self.v_to_h = nn.Conv2d(2 * hidden, 2 * hidden, 1)
        self.h_conv = _center_masked(in_ch, 2 * hidden, (1, half + 1), groups, kind)
        self.h_out = MaskedConv2d(
            hidden, hidden, 1, channel_mask(hidden, hidden, groups, "B")[:, :, None, None]
        )

    def forward(self, v: torch.Tensor, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        half = self.k // 2
        v_pre = self.v_conv(F.pad(v, (half, half, half, 0)))  # rows r-half..r
        h_pre = self.h_conv(F.pad(h, (half, 0, 0, 0)))  # columns c-half..c of row r
        v_down = F.pad(v_pre, (0, 0, 1, 0))[:, :, :-1]  # row r now carries rows < r
        h_new = self.h_out(self.drop(_gate(h_pre + self.v_to_h(v_down))))
        if not self.first:
            h_new = h + h_new
        return _gate(v_pre), h_new


class GatedPixelCNN(nn.Module):
    """(B, C, H, W) floats -> (B, P, C, H, W) parameters of each element's conditional."""

    def __init__(
        self,
        in_channels: int,
        num_params: int,
        hidden: int = 64,
        layers: int = 6,
        kernel: int = 5,
        out_hidden: int = 128,
        dropout: float = 0.0,
    ):
        super().__init__()
        c = in_channels
        hidden = max(c, hidden - hidden % c)
        out_hidden = max(c, out_hidden - out_hidden % c)
        self.c, self.p = c, num_params
        self.blocks = nn.ModuleList(
            GatedBlock(c if i == 0 else hidden, hidden, kernel, c, first=(i == 0), dropout=dropout)
            for i in range(layers)
        )
        b_mask = channel_mask(out_hidden, hidden, c, "B")[:, :, None, None]
        o_mask = channel_mask(c * num_params, out_hidden, c, "B")[:, :, None, None]
        self.out = nn.Sequential(
            nn.ELU(),
            MaskedConv2d(hidden, out_hidden, 1, b_mask),
            nn.ELU(),
            MaskedConv2d(out_hidden, c * num_params, 1, o_mask),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        v = h = x
        for block in self.blocks:
            v, h = block(v, h)
        out = self.out(h)  # channel j = p * C + c
        b, _, hh, ww = out.shape
        return out.view(b, self.p, self.c, hh, ww)


class MADE(nn.Module):
    """Masked MLP (Germain et al., 2015): (B, D) -> (B, P, D), output d sees inputs < d only."""

    def __init__(self, dim: int, num_params: int, hidden: int = 256, layers: int = 3):
        super().__init__()
        self.dim, self.p = dim, num_params
        # Hidden unit degrees cycle over 0..D-2 (a unit of degree k sees inputs 0..k).
        deg_in = torch.arange(dim)
        degs = [deg_in] + [torch.arange(hidden) % max(dim - 1, 1) for _ in range(layers)]
        mods: list[nn.Module] = []
        for i in range(layers):
            lin = MaskedLinear(dim if i == 0 else hidden, hidden, degs[i + 1][:, None] >= degs[i])
            mods += [lin, nn.SiLU()]
        deg_out = torch.arange(dim).repeat(num_params)  # output j = p * D + d
        mods.append(MaskedLinear(hidden, dim * num_params, deg_out[:, None] > degs[-1]))
        self.net = nn.Sequential(*mods)
        # The first dimension has no inputs: its parameters come from the output bias alone.

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).view(len(x), self.p, self.dim)


class MaskedLinear(nn.Linear):
    def __init__(self, in_dim: int, out_dim: int, mask: torch.Tensor):
        super().__init__(in_dim, out_dim)
        self.register_buffer("mask", mask.float())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight * self.mask, self.bias)
