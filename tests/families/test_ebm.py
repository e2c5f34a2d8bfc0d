"""EBM: quadrature and AIS recover known partition functions, SGLD samples a Gaussian, runs
complete, and a run that blows up ends as "diverged" with the step."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from genbench.evaluation.results import read_results
from genbench.families.ebm import HistogramBase, ais_log_z, refined_grid_log_z, sgld
from genbench.run import run


def _gaussian_energy(mean: torch.Tensor, std: torch.Tensor):
    return lambda y: 0.5 * (((y - mean) / std) ** 2).sum(1)


def test_quadrature_log_z_matches_gaussian():
    mean, std = torch.tensor([0.5, -1.0]), torch.tensor([0.3, 0.8])
    lo, hi = (mean - 8 * std).double(), (mean + 8 * std).double()
    log_z, change = refined_grid_log_z(_gaussian_energy(mean, std), lo, hi, n=64, tol=0.01)
    exact = math.log(2 * math.pi) + std.log().sum().item()
    assert abs(log_z - exact) < 0.01 and change < 0.01


def _truncated_gaussian_log_z(mean: float, std: float, dim: int) -> float:
    """log of the integral over [-1, 1]^dim of exp(-||y - mean||^2 / (2 std^2))."""
    n = torch.distributions.Normal(0.0, 1.0)
    mass = n.cdf(torch.tensor((1 - mean) / std)) - n.cdf(torch.tensor((-1 - mean) / std))
    return dim * (math.log(math.sqrt(2 * math.pi) * std) + math.log(mass.item()))


def test_ais_recovers_truncated_gaussian_log_z_within_its_error():
    dim, mean, std = 16, 0.3, 0.25
    energy = _gaussian_energy(torch.full((dim,), mean), torch.full((dim,), std))
    exact = _truncated_gaussian_log_z(mean, std, dim)
    base = HistogramBase(torch.full((dim, 17), 1 / 17))  # uniform on the cube
    z_scores = []
    for seed in range(3):
        gen = torch.Generator().manual_seed(seed)
        pilot = ais_log_z(energy, base, 16, 200, generator=gen)
        out = ais_log_z(energy, base, 64, 200, pilot["step_sizes"], generator=gen)
        assert out["stderr"] > 0 and 0.2 < out["accept_rate"] < 0.95
        z_scores.append((out["log_z"] - exact) / out["stderr"])
        assert abs(out["log_z"] - exact) < 4 * out["stderr"] + 0.05, (out, exact)
    assert abs(sum(z_scores) / 3) < 4, z_scores


def test_sgld_samples_gaussian_mean_and_variance():
    torch.manual_seed(0)
    mean, std = torch.tensor([1.0, -0.5]), torch.tensor([0.5, 0.8])
    h = 0.005
    y = sgld(_gaussian_energy(mean, std), torch.zeros(10000, 2), steps=1000, step_size=h)
    assert torch.allclose(y.mean(0), mean, atol=0.03)
    # Euler-Maruyama's stationary variance is std^2 / (1 - h / (2 std^2)): 1% above std^2 here.
    # The sample variance of 10000 draws has a relative error of 1.4%.
    assert torch.allclose(y.var(0), std**2, rtol=0.05)
    assert torch.allclose(y.var(0), std**2 / (1 - h / (2 * std**2)), rtol=0.045)


def test_histogram_base_is_normalised():
    probs = torch.softmax(torch.randn(3, 5), 1)
    base = HistogramBase(probs)
    y = -1 + (torch.arange(20000) + 0.5) * (2 / 20000)  # cell midpoints on [-1, 1]
    for d in range(3):
        one = HistogramBase(probs[d : d + 1])
        assert abs(one.log_prob(y[:, None]).exp().mean().item() * 2 - 1) < 1e-4
    s = base.sample(1000)
    assert s.min() >= -1 and s.max() <= 1
    # The density factorises over dimensions.
    parts = sum(HistogramBase(probs[d : d + 1]).log_prob(s[:, d : d + 1]) for d in range(3))
    assert torch.allclose(base.log_prob(s), parts)


FAST_AIS = [
    "model.ais_chains=16",
    "model.ais_temps=50",
    "model.ais_pilot_chains=8",
    "model.val_ais_chains=8",
    "model.val_ais_temps=20",
    "model.sgld_steps=5",
    "model.sample_steps=10",
]


@pytest.mark.parametrize("dataset", ["digits", "moons"])
def test_run_writes_results_with_estimate(fast_cfg, dataset):
    cfg = fast_cfg("model=ebm", f"dataset={dataset}", *FAST_AIS)
    run(cfg)
    rec = read_results(Path(cfg.paths.output_dir) / "results.json")
    m = rec["metrics"]
    assert rec["status"] == "completed" and rec["family"] == "ebm"
    assert m["nll_kind"] == "estimate" and math.isfinite(m["nll_bpd"])
    assert m["nll_bpd_stderr"] > 0
    assert m["nfe"] == 10 and m["samples_per_s"] > 0
    assert m["train_steps"] == 20


def test_divergence_is_recorded_with_its_step(fast_cfg):
    # An absurd learning rate: Adam moves every weight by ~1e30, the next energies overflow.
    cfg = fast_cfg("model=ebm", "dataset=moons", "model.lr=1e30", "model.sgld_steps=2")
    record = run(cfg)
    rec = read_results(Path(cfg.paths.output_dir) / "results.json")
    assert record["status"] == rec["status"] == "diverged"
    step = rec["diverged_at_step"]
    assert 1 <= step < 20 and rec["metrics"]["train_steps"] == step
    # The monitor reports the non-finite loss; the family's own reason says the same.
    assert rec["error"].startswith("non-finite") and rec["error"].endswith(f"at step {step}")
    assert rec["metrics"]["nll_bpd"] is None  # a diverged run is not evaluated
