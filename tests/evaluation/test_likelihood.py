"""Bits/dim arithmetic by hand, and the accumulated metric against a direct computation."""

from __future__ import annotations

import math

import torch

from genbench.data import DigitsDataModule
from genbench.evaluation.likelihood import BitsPerDim, bits_per_dim, evaluate_nll
from genbench.families.base import GenerativeModule


class UniformImageModel(GenerativeModule):
    """Every K-level pixel uniform: NLL = D ln K exactly, so bpd = log2 K."""

    family = "uniform"
    nll_kind = "exact"

    def __init__(self, spec):
        super().__init__(spec)
        self.dummy = torch.nn.Parameter(torch.zeros(()))

    def nll(self, batch):
        x = self.data(batch)
        return torch.full((len(x),), self.spec.num_dims * math.log(self.spec.num_levels))


def test_bits_per_dim_by_hand():
    # 64 dims, NLL 64 * ln 2 nats -> exactly 1 bit per dim.
    assert bits_per_dim(torch.tensor(64 * math.log(2)), 64).item() == 1.0
    assert (
        abs(
            bits_per_dim(torch.tensor(100.0, dtype=torch.float64), 64).item()
            - 100 / 64 / 0.6931471805599453
        )
        < 1e-12
    )


def test_uniform_model_scores_log2_k_over_whole_test_split():
    dm = DigitsDataModule(eval_batch_size=100)  # 447 examples -> 5 batches, last one partial
    out = evaluate_nll(UniformImageModel(dm.spec), dm.test_dataloader())
    assert abs(out["nll_bpd"] - math.log2(17)) < 1e-6  # float32 NLLs
    assert out["nll_bpd_stderr"] < 1e-6
    per = out["per_example_bpd"]
    assert per.shape == (447,) and torch.allclose(per, torch.full_like(per, math.log2(17)))


def test_metric_mean_and_stderr_match_direct_computation():
    torch.manual_seed(0)
    nats = torch.rand(1000) * 200
    metric = BitsPerDim(num_dims=64)
    for chunk in nats.split(77):
        metric.update(chunk)
    out = metric.compute()
    bpd = nats.double() / (64 * math.log(2))
    assert abs(out["nll_bpd"] - bpd.mean().item()) < 1e-9
    assert abs(out["nll_bpd_stderr"] - (bpd.std() / math.sqrt(1000)).item()) < 1e-9
