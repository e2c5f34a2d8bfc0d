"""Invertible layers for normalizing flows (RealNVP / Glow) and the flows built from them.

Every layer maps x -> (y, log|det dy/dx|) in `forward` and y -> x in `inverse`; log-dets are
per example, shape (B,).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from genbench.maths.distributions import gaussian_log_prob
from genbench.nets.mlp import mlp


def _num_positions(x: torch.Tensor) -> int:
    return math.prod(x.shape[2:])  # H*W for images, 1 for vectors


def _per_feature(v: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """A (C,) parameter shaped to broadcast over x (B, C, ...)."""
    return v.view(1, -1, *([1] * (x.dim() - 2)))


class ActNorm(nn.Module):
    """Per-channel affine y = (x + bias) * exp(log_scale), initialised from the first batch."""

    def __init__(self, channels: int):
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(channels))
        self.log_scale = nn.Parameter(torch.zeros(channels))
        self.register_buffer("initialized", torch.tensor(False))

    @torch.no_grad()
    def _init(self, x: torch.Tensor) -> None:
        flat = x.transpose(0, 1).reshape(x.shape[1], -1)
        self.bias.copy_(-flat.mean(1))
        self.log_scale.copy_(-torch.log(flat.std(1) + 1e-6))
        self.initialized.fill_(True)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if not self.initialized and self.training:
            self._init(x)
        y = (x + _per_feature(self.bias, x)) * _per_feature(self.log_scale, x).exp()
        logdet = self.log_scale.sum() * _num_positions(x)
        return y, logdet.expand(len(x))

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        return y * _per_feature(-self.log_scale, y).exp() - _per_feature(self.bias, y)


class InvConv1x1(nn.Module):
    """Glow's invertible 1x1 convolution: a learned C x C mixing of channels at every pixel."""

    def __init__(self, channels: int):
        super().__init__()
        w = torch.linalg.qr(torch.randn(channels, channels))[0]
        self.weight = nn.Parameter(w)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        y = torch.einsum("ij,bj...->bi...", self.weight, x)
        logdet = torch.linalg.slogdet(self.weight)[1] * _num_positions(x)
        return y, logdet.expand(len(x))

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        return torch.einsum("ij,bj...->bi...", torch.linalg.inv(self.weight), y)


class AffineCoupling(nn.Module):
    """RealNVP affine coupling: the masked part conditions a scale and shift of the rest.

    mask: "checkerboard" (pixels with (i + j) % 2 == parity are kept), "channel" (the first
    half of the channels, or the second if parity), "alternate" (vector dims d % 2 == parity).
    `net` maps x * mask (B, C, ...) -> (B, 2C, ...) raw (scale, shift); one evaluation per pass.
    """

    def __init__(self, net: nn.Module, channels: int, mask: str, parity: int):
        super().__init__()
        if mask not in ("checkerboard", "channel", "alternate"):
            raise ValueError(f"unknown coupling mask {mask!r}")
        self.net, self.mask_kind, self.parity = net, mask, parity
        self.scale = nn.Parameter(torch.ones(channels))

    def mask(self, x: torch.Tensor) -> torch.Tensor:
        """0/1 mask broadcastable to x: 1 where x passes through unchanged."""
        if self.mask_kind == "checkerboard":
            h, w = x.shape[2:]
            ij = torch.arange(h, device=x.device)[:, None] + torch.arange(w, device=x.device)
            return ((ij % 2) == self.parity).to(x.dtype)[None, None]
        c = x.shape[1]
        if self.mask_kind == "channel":
            m = (torch.arange(c, device=x.device) < c // 2) != bool(self.parity)
            return m.to(x.dtype).view(1, c, *([1] * (x.dim() - 2)))
        return ((torch.arange(c, device=x.device) % 2) == self.parity).to(x.dtype)[None]

    def _scale_shift(self, x_kept: torch.Tensor, m: torch.Tensor):
        raw_s, t = self.net(x_kept).chunk(2, dim=1)
        s = _per_feature(self.scale, raw_s) * torch.tanh(raw_s) * (1 - m)
        return s, t * (1 - m)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        m = self.mask(x)
        s, t = self._scale_shift(x * m, m)
        return x * s.exp() + t, s.flatten(1).sum(1)

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        m = self.mask(y)
        s, t = self._scale_shift(y * m, m)
        return (y - t) * (-s).exp()


class Squeeze(nn.Module):
    """(B, C, H, W) -> (B, 4C, H/2, W/2): each 2x2 block becomes 4 channels. Volume-preserving."""

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        b, c, h, w = x.shape
        y = x.view(b, c, h // 2, 2, w // 2, 2).permute(0, 1, 3, 5, 2, 4)
        return y.reshape(b, 4 * c, h // 2, w // 2), x.new_zeros(b)

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        b, c4, h, w = y.shape
        x = y.view(b, c4 // 4, 2, 2, h, w).permute(0, 1, 4, 2, 5, 3)
        return x.reshape(b, c4 // 4, 2 * h, 2 * w)


def conv_coupling_net(channels: int, hidden: int, depth: int) -> nn.Sequential:
    """(B, C, H, W) -> (B, 2C, H, W); the last conv starts at zero so the coupling starts at id."""
    mods: list[nn.Module] = [nn.Conv2d(channels, hidden, 3, padding=1), nn.ReLU()]
    for _ in range(depth):
        mods += [
            nn.Conv2d(hidden, hidden, 1),
            nn.ReLU(),
            nn.Conv2d(hidden, hidden, 3, padding=1),
            nn.ReLU(),
        ]
    last = nn.Conv2d(hidden, 2 * channels, 3, padding=1)
    nn.init.zeros_(last.weight)
    nn.init.zeros_(last.bias)
    return nn.Sequential(*mods, last)


class FlowSequence(nn.Module):
    """Layers applied in order; the log-dets add up."""

    def __init__(self, layers: list[nn.Module]):
        super().__init__()
        self.layers = nn.ModuleList(layers)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logdet = x.new_zeros(len(x))
        for layer in self.layers:
            x, ld = layer(x)
            logdet = logdet + ld
        return x, logdet

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        for layer in reversed(self.layers):
            y = layer.inverse(y)
        return y


class MultiScaleFlow(nn.Module):
    """RealNVP/Glow multi-scale flow on (C, H, W) with a standard normal base.

    Per scale: `checkerboard_steps` x [actnorm, checkerboard coupling], squeeze, `steps` x
    [actnorm, 1x1 conv, channel coupling]; then (except at the last scale) half the channels
    are factored out to the base distribution. H and W must be divisible by 2**num_scales.
    """

    def __init__(
        self,
        shape: tuple[int, int, int],
        hidden: int,
        depth: int,
        num_scales: int,
        steps: int,
        checkerboard_steps: int,
    ):
        super().__init__()
        c, h, w = shape
        if h % 2**num_scales or w % 2**num_scales:
            raise ValueError(f"image {h}x{w} is not divisible by 2**num_scales={2**num_scales}")
        self.shape = shape
        self.scales = nn.ModuleList()
        self.out_shapes: list[tuple[int, ...]] = []  # shapes handed to the base, in order
        for i in range(num_scales):
            layers: list[nn.Module] = []
            for k in range(checkerboard_steps):
                coupling = AffineCoupling(
                    conv_coupling_net(c, hidden, depth), c, "checkerboard", k % 2
                )
                layers += [ActNorm(c), coupling]
            layers.append(Squeeze())
            c, h, w = 4 * c, h // 2, w // 2
            for k in range(steps):
                coupling = AffineCoupling(conv_coupling_net(c, hidden, depth), c, "channel", k % 2)
                layers += [ActNorm(c), InvConv1x1(c), coupling]
            self.scales.append(FlowSequence(layers))
            if i < num_scales - 1:
                self.out_shapes.append((c - c // 2, h, w))
                c = c // 2
        self.out_shapes.append((c, h, w))

    def encode(self, x: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        """x (B, C, H, W) -> (base draws zs with shapes out_shapes, log|det| (B,))."""
        zs = []
        logdet = x.new_zeros(len(x))
        for i, scale in enumerate(self.scales):
            x, ld = scale(x)
            logdet = logdet + ld
            if i < len(self.scales) - 1:
                keep = x.shape[1] // 2
                zs.append(x[:, keep:])
                x = x[:, :keep]
        return zs + [x], logdet

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x (B, C, H, W) -> (log N(z) of all base draws (B,), log|det| (B,))."""
        zs, logdet = self.encode(x)
        return sum(gaussian_log_prob(z, 0.0, 0.0).flatten(1).sum(1) for z in zs), logdet

    def inverse_from_noise(self, zs: list[torch.Tensor]) -> torch.Tensor:
        """zs: base draws with shapes (B, *out_shapes[i]) -> x (B, C, H, W)."""
        x = zs[-1]
        for i in reversed(range(len(self.scales))):
            if i < len(self.scales) - 1:
                x = torch.cat([x, zs[i]], dim=1)
            x = self.scales[i].inverse(x)
        return x


class PointFlow(nn.Module):
    """RealNVP for vectors: `layers` x [actnorm, coupling with alternating masks], N(0, I) base."""

    def __init__(self, dim: int, hidden: int, layers: int, net_layers: int):
        super().__init__()
        mods: list[nn.Module] = []
        for k in range(layers):
            net = mlp(dim, 2 * dim, hidden, net_layers)
            nn.init.zeros_(net[-1].weight)
            nn.init.zeros_(net[-1].bias)
            mods += [ActNorm(dim), AffineCoupling(net, dim, "alternate", k % 2)]
        self.flow = FlowSequence(mods)

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        z, logdet = self.flow(x)
        return gaussian_log_prob(z, 0.0, 0.0).sum(1) + logdet

    def inverse(self, z: torch.Tensor) -> torch.Tensor:
        return self.flow.inverse(z)
