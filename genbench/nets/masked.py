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
        self, in_ch: int, hidden: int, kernel: int, groups: int, first: bool, dropout: float
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
        hidden: int,
        layers: int,
        kernel: int,
        out_hidden: int,
        dropout: float,
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

    def cached(self, batch: int, height: int, width: int) -> CachedPixelCNN:
        """A raster-order evaluator of this network for `batch` images of height x width."""
        return CachedPixelCNN(self, batch, height, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        v = h = x
        for block in self.blocks:
            v, h = block(v, h)
        out = self.out(h)  # channel j = p * C + c
        b, _, hh, ww = out.shape
        return out.view(b, self.p, self.c, hh, ww)


class MADE(nn.Module):
    """Masked MLP (Germain et al., 2015): (B, D) -> (B, P, D), output d sees inputs < d only."""

    def __init__(self, dim: int, num_params: int, hidden: int, layers: int):
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


class CachedPixelCNN:
    """Raster-order evaluation of a GatedPixelCNN that computes each activation once.

    Fast generation in the manner of Ramachandran et al. (2017): the vertical stack of row r
    depends on rows <= r only, so once row r is sampled every layer's vertical features of row r
    are computed (one row of each convolution) and kept; the horizontal stack of pixel (i, j)
    needs, per layer, the horizontal features of columns j - k//2 .. j of row i (kept from the
    previous pixels of the row) and the vertical features of row i - 1 (kept from the row before).
    A pixel then costs one column of every layer instead of the whole network over rows <= i.

    Exact: the same operations as `GatedPixelCNN.forward` on the same inputs, with the
    convolutions restricted to the outputs a pixel needs (the horizontal ones as matrix products
    over a window, so the results agree with `forward` to floating-point rounding, not bit for
    bit). Inference only: no dropout. Usage, pixels in raster order:

        cache = net.cached(batch, height, width)  # or CachedPixelCNN(net, ...)
        params = cache.pixel(i, j, x[:, :, i])    # (B, P, C): the conditionals at (i, j); again
                                                  # after each channel of (i, j) is drawn
        cache.end_row(i, x[:, :, i])              # once row i is complete
    """

    @torch.no_grad()
    def __init__(self, net: GatedPixelCNN, batch: int, height: int, width: int):
        self.net, self.half, self.w = net, net.blocks[0].k // 2, width
        p = next(net.parameters())
        opts = {"dtype": p.dtype, "device": p.device}
        half, b = self.half, batch
        # Per layer l: its vertical-stack input over all rows, zero-padded like forward's F.pad
        # (half rows on top, half columns either side), channels first for F.conv2d.
        self.v_in = [
            torch.zeros(b, blk.v_conv.in_channels, height + half, width + 2 * half, **opts)
            for blk in net.blocks
        ]
        # Per layer l: v_to_h of the vertical features one row up plus the horizontal
        # convolution's bias, (B, W, 2F) channels last. For row 0 that row is forward's zero
        # padding, so the 1x1 convolution gives its bias.
        self.v_to_h = [
            (blk.v_to_h.bias + blk.h_conv.bias).expand(b, width, -1).clone().to(**opts)
            for blk in net.blocks
        ]
        # Per layer l: its horizontal-stack input along the current row, (B, half + W, C_in)
        # channels last (half zero columns on the left), so a pixel's window is a view.
        self.h_in = [
            torch.zeros(b, half + width, blk.h_conv.in_channels, **opts) for blk in net.blocks
        ]
        # The horizontal convolution as one matrix over its window (taps, C_in), mask applied,
        # transposed for addmm: (taps * C_in, 2F).
        self.h_weight_t = [
            (blk.h_conv.weight * blk.h_conv.mask).permute(0, 2, 3, 1).flatten(1).T
            for blk in net.blocks
        ]
        self.h_out_weight = [(blk.h_out.weight * blk.h_out.mask).flatten(1) for blk in net.blocks]
        self.v_to_h_weight = [blk.v_to_h.weight.flatten(1) for blk in net.blocks]
        _, out1, _, out2 = net.out
        self.out_weights = [
            ((out1.weight * out1.mask).flatten(1), out1.bias),
            ((out2.weight * out2.mask).flatten(1), out2.bias),
        ]

    @torch.no_grad()
    def pixel(self, i: int, j: int, x_row: torch.Tensor) -> torch.Tensor:
        """Parameters (B, P, C) of the conditionals at pixel (i, j), given the rows < i passed to
        `end_row` and row i so far, x_row (B, C, W) in the network's input units (pixels after
        (i, j), and the channels of (i, j) not yet drawn, are masked: their values do not matter).
        """
        half, net = self.half, self.net
        start = max(0, j - half)  # the input window: the previous pixels may have changed since
        self.h_in[0][:, half + start : half + j + 1] = x_row[:, :, start : j + 1].transpose(1, 2)
        h = None
        for l, blk in enumerate(net.blocks):
            window = self.h_in[l][:, j : j + half + 1].flatten(1)  # columns j-half..j, a view
            pre = torch.addmm(self.v_to_h[l][:, j], window, self.h_weight_t[l])  # (B, 2F)
            # _gate in two kernels: tanh of the first half in place, then a * sigmoid(b).
            torch.tanh_(pre[:, : pre.shape[1] // 2])
            h = F.linear(F.glu(pre, dim=1), self.h_out_weight[l], blk.h_out.bias)
            if not blk.first:
                h = self.h_in[l][:, half + j] + h
            if l + 1 < len(net.blocks):
                self.h_in[l + 1][:, half + j] = h
        (w1, b1), (w2, b2) = self.out_weights
        out = F.linear(F.elu(F.linear(F.elu(h), w1, b1)), w2, b2)  # channel p * C + c
        return out.view(len(out), net.p, net.c)

    @torch.no_grad()
    def end_row(self, i: int, x_row: torch.Tensor) -> None:
        """Row i (B, C, W) is complete: compute every layer's vertical features of row i."""
        half, w = self.half, self.w
        self.v_in[0][:, :, half + i, half : half + w] = x_row
        for l, blk in enumerate(self.net.blocks):
            rows = self.v_in[l][:, :, i : i + half + 1]  # rows i-half..i, padded
            v_pre = blk.v_conv(rows)  # (B, 2F, 1, W)
            if l + 1 < len(self.v_in):
                self.v_in[l + 1][:, :, half + i, half : half + w] = _gate(v_pre)[:, :, 0]
            flat = v_pre[:, :, 0].transpose(1, 2)  # (B, W, 2F)
            bias = blk.v_to_h.bias + blk.h_conv.bias
            self.v_to_h[l] = F.linear(flat, self.v_to_h_weight[l], bias)
