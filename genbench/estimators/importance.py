"""Importance estimates of log E[w] from S draws, at nested numbers of draws.

log mean_s w_s is low in expectation (Jensen), by an amount that shrinks roughly like 1/S; the
same draws cut at S/2, S/4, ... show how far the estimate still moves (the IWAE argument of
Burda et al. 2016 applied to any positive weights).
"""

from __future__ import annotations

import math

import torch

from genbench.maths.distributions import bits_per_dim


def draw_counts(max_draws: int) -> list[int]:
    """1, 2, 4, ... below max_draws, then max_draws: the nested cuts of a draw ladder."""
    if max_draws < 1:
        raise ValueError(f"draws={max_draws}; valid: >= 1")
    counts = [1 << i for i in range(max_draws.bit_length()) if 1 << i < max_draws]
    return counts + [max_draws]


def log_mean_exp(log_w: torch.Tensor, draws: int) -> torch.Tensor:
    """log mean of exp(log_w[:draws]) over the first axis: (S, B) -> (B,)."""
    return torch.logsumexp(log_w[:draws], 0) - math.log(draws)


class DrawTally:
    """Running sums over examples of nats = offset - log mean exp(log_w), at every cut of
    draw_counts(S): an importance estimate of -log E[w] (plus a per-example offset, e.g. a base
    NLL), high in expectation, at S/2, S/4, ... draws as well as S."""

    def __init__(self, max_draws: int):
        self.counts = draw_counts(max_draws)
        self.reset()

    def reset(self) -> None:
        self.sums = dict.fromkeys(self.counts, 0.0)
        self.examples = 0

    def add(self, log_w: torch.Tensor, offset: torch.Tensor) -> torch.Tensor:
        """Tally log_w (S, B) with offset (B,); returns the estimate at all S draws (B,)."""
        for n in self.counts:
            self.sums[n] += float((offset - log_mean_exp(log_w, n)).double().sum())
        self.examples += log_w.shape[1]
        return offset - log_mean_exp(log_w, self.counts[-1])

    def means(self) -> dict[int, float]:
        """{draws: mean nats over the examples tallied} ({} before any)."""
        return {n: s / self.examples for n, s in self.sums.items()} if self.examples else {}


def dequantisation_summary(means: dict[int, float], log_z: float, num_dims: int) -> dict:
    """results.json's dequantisation_ladder (the NLL in bits/dim, data term `means` + log_z, at
    each number of draws) and dequantisation_last_move_bpd: what the last doubling of the draws
    changed (negative in expectation: the data term is high and falls towards its limit)."""
    ladder = [{"draws": n, "nll_bpd": bits_per_dim(m + log_z, num_dims)} for n, m in means.items()]
    move = ladder[-1]["nll_bpd"] - ladder[-2]["nll_bpd"] if len(ladder) > 1 else None
    return {"dequantisation_ladder": ladder, "dequantisation_last_move_bpd": move}
