"""The EBM's likelihood estimate against the truth, on an energy whose partition function is known.

An energy that factorises over pixels, E(y) = sum_d a_d y_d + b_d y_d^2, on the EBM's histogram
base q makes every quantity a product of one-dimensional integrals, computed here by quadrature
independently of genbench's estimators:
    Z_E = prod_d sum_k q_dk (K/2) int_{bin k} exp(-e_d),
    -log P(x) = -sum_d log q_{d,x_d} - sum_d log (K/2) int_{bin x_d} exp(-e_d) + log Z_E.
The EBM's estimate mixes two biases of opposite sign (AIS's log Z is low in expectation; the
importance estimate of the dequantised data term is high); this checks each direction on its own,
and that the estimate converges to the truth as the AIS ladder and the dequantisation draws grow.
"""

from __future__ import annotations

import math

import pytest
import torch
from hydra.utils import instantiate

from genbench.families.build import build_model
from tests.conftest import compose_config


class FactorisedEnergy(torch.nn.Module):
    """E(y) = sum_d a_d y_d + b_d y_d^2 for images y (N, 1, H, W) -> (N,)."""

    def __init__(self, num_dims: int, seed: int = 0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.a = torch.nn.Parameter(4 * torch.rand(num_dims, generator=g) - 2)
        self.b = torch.nn.Parameter(2 * torch.rand(num_dims, generator=g) - 1)

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        flat = y.flatten(1)
        return (self.a * flat + self.b * flat**2).sum(1)


def bin_integrals(energy: FactorisedEnergy, num_levels: int, points: int = 4001) -> torch.Tensor:
    """(D, K) float64: (K/2) int_{bin k} exp(-e_d(y)) dy, the mean of exp(-e_d) over each bin, by
    Simpson's rule on `points` nodes per bin."""
    edges = torch.linspace(-1, 1, num_levels + 1, dtype=torch.float64)
    t = torch.linspace(0, 1, points, dtype=torch.float64)
    y = edges[:-1, None] + (edges[1:] - edges[:-1])[:, None] * t  # (K, P)
    a, b = energy.a.detach().double(), energy.b.detach().double()
    f = torch.exp(-(a[:, None, None] * y + b[:, None, None] * y**2))  # (D, K, P)
    w = torch.ones(points, dtype=torch.float64)
    w[1:-1:2], w[2:-1:2] = 4, 2
    return (f * w).sum(-1) / (3 * (points - 1))


def true_nll(module, energy, x: torch.Tensor) -> tuple[torch.Tensor, float]:
    """(per-example NLL (N,) in nats, log Z_E) by quadrature."""
    probs = (module.level_counts / module.level_counts.sum(1, keepdim=True)).double()
    means = bin_integrals(energy, module.spec.num_levels)
    log_z = torch.log((probs * means).sum(1)).sum().item()
    flat = x.flatten(1).T  # (D, N)
    nll = -(torch.log(probs.gather(1, flat)) + torch.log(means.gather(1, flat))).sum(0) + log_z
    return nll, log_z


def estimate(tmp_path, draws: int, temps: list[int], chains: int, seed: int = 3):
    """(module, per-example estimate (N,) nats, the module's diagnostics) on the digits test
    split, for `draws` dequantisation draws and an AIS ladder of `temps` x `chains` x 4."""
    cfg = compose_config(
        [
            "model=ebm",
            "dataset=digits",
            f"model.nll_dequant_samples={draws}",
            f"model.ais_temps=[{','.join(map(str, temps))}]",
            f"model.ais_chains={chains}",
            "model.ais_repeats=4",
            "model.ais_pilot_chains=32",
        ],
        tmp_path / "cfg",
    )
    dm = instantiate(cfg.dataset)
    module = build_model(cfg.model, dm.spec)
    module.fit_base(dm.split("train")[0])
    module.energy = FactorisedEnergy(dm.spec.num_dims)
    x = dm.split("test")[0]
    with torch.inference_mode():
        module.begin_nll_pass(seed)
        torch.manual_seed(seed)
        nats = module.nll((x, None)).double()
    return module, x, nats, module.nll_diagnostics()


def bpd(nats: float) -> float:
    return nats / (64 * math.log(2))


def test_each_bias_has_its_direction_and_the_estimate_converges_to_the_truth(tmp_path):
    small, x, rough, _ = estimate(tmp_path, draws=1, temps=[4, 8], chains=8)
    truth, log_z = true_nll(small, small.energy, x)
    big, _, fine, fine_diag = estimate(tmp_path, draws=64, temps=[400, 800], chains=32)

    # One draw: the data term (the estimate minus its log Z) is high, by Jensen (0.077 nats
    # here; the standard error of that mean over the 447 images is ~0.02).
    data_rough = rough - small.log_z()["log_z"]
    assert (data_rough - (truth - log_z)).mean() > 0.03
    # A short AIS: log Z is low (by 3 nats here).
    assert small.log_z()["log_z"] < log_z - 1.0
    # With more draws and a longer ladder the estimate is the truth: within 0.002 bits/dim in
    # the mean (0.0006 here), and every example within 0.01 (0.004).
    assert abs(bpd((fine - truth).mean().item())) < 0.002
    assert bpd((fine - truth).abs().max().item()) < 0.01
    assert abs(big.log_z()["log_z"] - log_z) < 0.1
    # And the rough one is measurably wrong, so this is a test of the estimator, not the data.
    assert abs(bpd((rough - truth).mean().item())) > 0.03

    # The diagnostics give the NLL at every cut of the draws: one draw sits above 64 by about
    # the data term's Jensen bias (0.0017 bits/dim here).
    ladder = fine_diag["dequantisation_ladder"]
    assert [r["draws"] for r in ladder] == [1, 2, 4, 8, 16, 32, 64]
    assert ladder[0]["nll_bpd"] - ladder[-1]["nll_bpd"] > 0.001
    assert ladder[-1]["nll_bpd"] == pytest.approx(bpd(fine.mean().item()), abs=1e-6)  # float32


@pytest.mark.parametrize("draws", [2, 8])
def test_the_dequantised_data_term_is_the_log_mean_exp_of_its_draws(tmp_path, draws):
    """With log Z out of the way (the quadrature truth), the data term per example is
    -log mean_s exp(-E(y_s)) over `draws` uniform draws in the example's bins, recomputed here
    from the same draws."""
    module, x, nats, _ = estimate(tmp_path, draws=draws, temps=[4, 8], chains=4)
    x = x[:50]
    with torch.inference_mode():
        module.begin_nll_pass(3)
        torch.manual_seed(11)
        got = module.nll((x, None)).double() - module.log_z()["log_z"]
        torch.manual_seed(11)
        u = torch.stack([torch.rand(x.shape) for _ in range(draws)])  # the same draws
    y = ((x.double() + u.double()) * (2 / 17) - 1).flatten(2)  # (S, N, D)
    e = torch.stack([module.energy(s.float()).double() for s in y])  # (S, N)
    probs = (module.level_counts / module.level_counts.sum(1, keepdim=True)).double()
    base = -torch.log(probs.gather(1, x.flatten(1).T)).sum(0)
    want = base - (torch.logsumexp(-e, 0) - math.log(draws))
    assert torch.allclose(got, want, atol=1e-4)
    # The mean energy (Jensen's upper bound, the estimator before) differs measurably.
    assert (base + e.mean(0) - want).mean() > 1e-3
