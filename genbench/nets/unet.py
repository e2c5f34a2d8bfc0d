"""Denoising networks conditioned on a timestep: a U-Net for images, a residual MLP for points.

The U-Net follows improved-diffusion (Nichol & Dhariwal, 2021) in miniature: residual blocks with
a timestep embedding, self-attention at chosen resolutions, dropout; its depth is set by
`channel_mult`, so one class serves 8x8 digits and 32x32 CIFAR-10 by configuration alone.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from genbench.nets.mlp import timestep_embedding


def group_norm(channels: int, max_groups: int = 32) -> nn.GroupNorm:
    """GroupNorm with the largest group count <= max_groups that divides `channels`."""
    g = min(max_groups, channels)
    while channels % g:
        g -= 1
    return nn.GroupNorm(g, channels)


def zero_init(module: nn.Module) -> nn.Module:
    """Zero a layer's weights so a residual branch starts as the identity."""
    for p in module.parameters():
        nn.init.zeros_(p)
    return module


class ResBlock(nn.Module):
    def __init__(self, in_ch: int, out_ch: int, emb_dim: int, dropout: float):
        super().__init__()
        self.inp = nn.Sequential(
            group_norm(in_ch), nn.SiLU(), nn.Conv2d(in_ch, out_ch, 3, padding=1)
        )
        self.emb = nn.Sequential(nn.SiLU(), nn.Linear(emb_dim, out_ch))
        self.out = nn.Sequential(
            group_norm(out_ch),
            nn.SiLU(),
            nn.Dropout(dropout),
            zero_init(nn.Conv2d(out_ch, out_ch, 3, padding=1)),
        )
        self.skip = nn.Identity() if in_ch == out_ch else nn.Conv2d(in_ch, out_ch, 1)

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        h = self.inp(x) + self.emb(emb)[:, :, None, None]
        return self.skip(x) + self.out(h)


class AttentionBlock(nn.Module):
    def __init__(self, channels: int, num_heads: int):
        super().__init__()
        self.num_heads = num_heads
        self.norm = group_norm(channels)
        self.qkv = nn.Conv1d(channels, 3 * channels, 1)
        self.proj = zero_init(nn.Conv1d(channels, channels, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        qkv = self.qkv(self.norm(x).view(b, c, h * w))  # (B, 3C, N)
        q, k, v = (
            qkv.view(b, 3, self.num_heads, c // self.num_heads, h * w).transpose(-1, -2).unbind(1)
        )
        out = F.scaled_dot_product_attention(q, k, v)  # (B, heads, N, C/heads)
        out = out.transpose(-1, -2).reshape(b, c, h * w)
        return x + self.proj(out).view(b, c, h, w)


class UNet(nn.Module):
    """eps/v-prediction network: x (B, C, H, W) float, t (B,) steps -> (B, out_channels, H, W)."""

    def __init__(
        self,
        in_channels: int,
        image_size: int,
        out_channels: int | None,
        channels: int,
        channel_mult: Sequence[int],
        num_res_blocks: int,
        attention_resolutions: Sequence[int],
        dropout: float,
        num_heads: int,
    ):
        super().__init__()
        out_channels = out_channels or in_channels
        self.channels = channels
        emb_dim = 4 * channels
        self.time_embed = nn.Sequential(
            nn.Linear(channels, emb_dim), nn.SiLU(), nn.Linear(emb_dim, emb_dim)
        )
        attn_at = set(attention_resolutions)

        def stage(in_ch: int, out_ch: int, res: int) -> nn.ModuleList:
            mods = [ResBlock(in_ch, out_ch, emb_dim, dropout)]
            if res in attn_at:
                mods.append(AttentionBlock(out_ch, num_heads))
            return nn.ModuleList(mods)

        self.inp = nn.Conv2d(in_channels, channels, 3, padding=1)
        self.down = nn.ModuleList()
        skips, ch, res = [channels], channels, image_size
        for level, mult in enumerate(channel_mult):
            for _ in range(num_res_blocks):
                self.down.append(stage(ch, channels * mult, res))
                ch = channels * mult
                skips.append(ch)
            if level < len(channel_mult) - 1:
                self.down.append(nn.ModuleList([nn.Conv2d(ch, ch, 3, stride=2, padding=1)]))
                skips.append(ch)
                res //= 2
        self.mid = nn.ModuleList(
            [
                ResBlock(ch, ch, emb_dim, dropout),
                AttentionBlock(ch, num_heads),
                ResBlock(ch, ch, emb_dim, dropout),
            ]
        )
        self.up = nn.ModuleList()
        for level, mult in reversed(list(enumerate(channel_mult))):
            for i in range(num_res_blocks + 1):
                mods = stage(ch + skips.pop(), channels * mult, res)
                ch = channels * mult
                if level > 0 and i == num_res_blocks:
                    mods.append(
                        nn.Sequential(nn.Upsample(scale_factor=2), nn.Conv2d(ch, ch, 3, padding=1))
                    )
                    res *= 2
                self.up.append(mods)
        self.out = nn.Sequential(
            group_norm(ch), nn.SiLU(), zero_init(nn.Conv2d(ch, out_channels, 3, padding=1))
        )

    @staticmethod
    def _run(mods: nn.ModuleList, h: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        for m in mods:
            h = m(h, emb) if isinstance(m, ResBlock) else m(h)
        return h

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        emb = self.time_embed(timestep_embedding(t, self.channels))
        h = self.inp(x)
        hs = [h]
        for mods in self.down:
            h = self._run(mods, h, emb)
            hs.append(h)
        h = self._run(self.mid, h, emb)
        for mods in self.up:
            h = self._run(mods, torch.cat([h, hs.pop()], dim=1), emb)
        return self.out(h)


class TimeMLP(nn.Module):
    """Residual MLP denoiser for points: x (B, D), t (B,) -> (B, D)."""

    def __init__(self, dim: int, hidden: int, num_blocks: int, dropout: float):
        super().__init__()
        self.hidden = hidden
        self.time_embed = nn.Sequential(
            nn.Linear(hidden, hidden), nn.SiLU(), nn.Linear(hidden, hidden)
        )
        self.inp = nn.Linear(dim, hidden)
        self.blocks = nn.ModuleList(
            nn.ModuleDict(
                {
                    "fc1": nn.Linear(hidden, hidden),
                    "emb": nn.Linear(hidden, hidden),
                    "fc2": nn.Sequential(nn.SiLU(), nn.Dropout(dropout), nn.Linear(hidden, hidden)),
                }
            )
            for _ in range(num_blocks)
        )
        self.out = nn.Sequential(nn.SiLU(), zero_init(nn.Linear(hidden, dim)))

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        emb = self.time_embed(timestep_embedding(t, self.hidden))
        h = self.inp(x)
        for b in self.blocks:
            h = h + b["fc2"](b["fc1"](F.silu(h)) + b["emb"](F.silu(emb)))
        return self.out(h)
