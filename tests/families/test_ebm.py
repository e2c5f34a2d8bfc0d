"""EBM: quadrature and AIS recover known partition functions, SGLD samples a Gaussian, runs
complete, and a run that blows up ends as "diverged" with the step."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from genbench.core.results import read_results
from genbench.data import DigitsDataModule
from genbench.families.ebm import (
    EBM,
    HistogramBase,
    ais_log_z,
    refined_grid_log_z,
    residual_ais_log_z,
    sgld,
)
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


def test_histogram_icdf_maps_uniform_to_the_base():
    torch.manual_seed(0)
    probs = torch.softmax(2 * torch.randn(4, 17), 1)
    base = HistogramBase(probs)
    u = torch.rand(100000, 4)
    y = base.icdf(u)
    assert y.min() >= -1 and y.max() <= 1
    # Monotone in u, and the bin frequencies of icdf(uniform) are the probs (100000 draws:
    # binomial standard deviation <= 0.0016).
    order = u[:, 0].argsort()
    assert (y[order, 0].diff() >= 0).all()
    bins = ((y + 1) / 2 * 17).floor().long().clamp(0, 16)
    freq = torch.stack([torch.bincount(bins[:, d], minlength=17) for d in range(4)]) / len(u)
    assert (freq - probs).abs().max() < 0.008
    # Within a bin the draws are uniform: the within-bin position has mean 1/2.
    frac = (y + 1) / 2 * 17 - bins
    assert abs(frac.mean().item() - 0.5) < 0.01


def _separable_residual_log_z(base: HistogramBase, a: torch.Tensor, c: torch.Tensor) -> float:
    """log E_q[exp(-sum_d a_d (y_d - c_d)^2)] for a factorised q: a sum of 1-D quadratures."""
    g = -1 + (torch.arange(200000, dtype=torch.float64) + 0.5) * (2 / 200000)
    total = 0.0
    for d in range(len(a)):
        q = HistogramBase(base.probs[d : d + 1].double()).log_prob(g[:, None]).exp()
        integrand = q * torch.exp(-a[d].double() * (g - c[d].double()) ** 2)
        total += math.log(integrand.mean().item() * 2)
    return total


def test_residual_ais_recovers_a_separable_quadratic_log_z_within_its_error():
    torch.manual_seed(0)
    dim = 8
    base = HistogramBase(torch.softmax(torch.randn(dim, 17), 1))
    a, c = torch.linspace(1, 4, dim), torch.linspace(-0.5, 0.5, dim)
    exact = _separable_residual_log_z(base, a, c)
    z_scores = []
    for seed in range(3):
        gen = torch.Generator().manual_seed(seed)
        pilot = residual_ais_log_z(lambda y: (a * (y - c) ** 2).sum(1), base, 16, 200, None, gen)
        out = residual_ais_log_z(
            lambda y: (a * (y - c) ** 2).sum(1), base, 64, 200, pilot["step_sizes"], gen
        )
        assert out["stderr"] > 0 and 0.2 < out["accept_rate"] < 0.95
        z_scores.append((out["log_z"] - exact) / out["stderr"])
        assert abs(out["log_z"] - exact) < 4 * out["stderr"] + 0.05, (out, exact)
    assert abs(sum(z_scores) / 3) < 4, z_scores


def test_untrained_image_model_is_exactly_its_base():
    dm = DigitsDataModule()
    x_train, x_test = dm.split("train")[0], dm.split("test")[0][:64]
    module = EBM(dm.spec, ais_chains=8, ais_temps=10, ais_pilot_chains=4, sample_steps=10)
    module.fit_base(x_train)
    # The base's discrete NLL, computed independently from the level frequencies.
    k = dm.spec.num_levels
    flat = x_train.flatten(1)
    counts = torch.stack([torch.bincount(flat[:, d], minlength=k) for d in range(flat.shape[1])])
    probs = (counts + 1.0) / (counts + 1.0).sum(1, keepdim=True)
    base_nll = -torch.log(probs.gather(1, x_test.flatten(1).T)).sum(0)
    with torch.inference_mode():
        nll = module.nll((x_test, None))
    assert module.log_z()["log_z"] == pytest.approx(0.0, abs=1e-4)  # float32 log q sums
    assert torch.allclose(nll, base_nll, rtol=1e-5)
    # Its samples are exact base draws: pixel means match the base's means.
    with torch.inference_mode():
        s = module.sample(2000, torch.Generator().manual_seed(0)).flatten(1).float()
    levels = torch.arange(k, dtype=torch.float)
    assert (s.mean(0) - probs @ levels).abs().max() < 0.5


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
