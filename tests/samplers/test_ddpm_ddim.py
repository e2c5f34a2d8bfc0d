"""DDIM against diffusers' DDIMScheduler and the probability-flow ODE's Euler step by hand;
DDIM(S=T, eta=1) is DDPM; both land on a Gaussian data distribution with its exact denoiser."""

from __future__ import annotations

import pytest
import torch
from diffusers import DDIMScheduler

from genbench.maths.diffusion_parameterisations import EpsPrediction
from genbench.maths.gaussian_diffusion import GaussianDiffusion, beta_schedule
from genbench.samplers.base import run
from genbench.samplers.ddim import DDIM
from genbench.samplers.ddpm import DDPM

MU, STD = torch.tensor([0.5, -1.0]), torch.tensor([0.3, 1.2])


def _process(num_steps: int, schedule: str = "linear") -> GaussianDiffusion:
    return GaussianDiffusion(num_steps, schedule, EpsPrediction(), "beta_tilde", False)


def _gaussian_x0(d: GaussianDiffusion):
    """The exact E[x0 | x_t] for data N(MU, STD^2): the optimal x0-predictor."""

    def x0(xt: torch.Tensor, t: int) -> torch.Tensor:
        a, var = d.sqrt_acp[t], 1 - d.alphas_cumprod[t]
        return MU + a * STD**2 * (xt - a * MU) / (a**2 * STD**2 + var)

    return x0


def _toy_x0(xt: torch.Tensor, t: int) -> torch.Tensor:
    """A nonlinear, step-dependent stand-in for a network's x0."""
    w = torch.tensor([[0.9, -0.4, 0.2], [0.3, 0.8, -0.5], [-0.2, 0.1, 1.1]])
    return torch.tanh(xt @ w * (1 + t / 50))


@pytest.mark.parametrize("eta", [0.0, 1.0])
def test_ddim_matches_diffusers_ddim_scheduler(eta):
    """All T steps (where diffusers' previous step t - T // S is the grid's): same trajectory."""
    n = 100
    d = _process(n)
    ours = DDIM(d, eta)
    ours.set_timesteps(n)
    theirs = DDIMScheduler(
        num_train_timesteps=n,
        trained_betas=beta_schedule("linear", n).tolist(),
        prediction_type="sample",
        clip_sample=False,
        set_alpha_to_one=True,
    )
    theirs.set_timesteps(n)
    assert ours.timesteps == theirs.timesteps.tolist()
    x0 = torch.randn(16, 3, generator=torch.Generator().manual_seed(0))
    x, y = x0.clone(), x0.clone()
    g1, g2 = torch.Generator().manual_seed(1), torch.Generator().manual_seed(1)
    for t in ours.timesteps:
        x = ours.step(_toy_x0(x, t), t, x, g1)
        y = theirs.step(_toy_x0(y, t), t, y, eta=eta, generator=g2).prev_sample
    assert torch.allclose(x, y, atol=1e-5), (x - y).abs().max()


@pytest.mark.parametrize("steps", [2, 10, 37])
def test_respaced_ddim_is_the_probability_flow_euler_step(steps):
    """eta=0 on S < T steps: DDIM is Euler's method for dx̄/dσ = eps in x̄ = x / sqrt(a),
    σ = sqrt((1 - a) / a) (Song et al., 2021, eq. 14), computed here in float64."""
    n = 200
    d = _process(n, "cosine")
    sampler = DDIM(d, 0.0)
    sampler.set_timesteps(steps)
    grid = sorted({round(v) for v in torch.linspace(0, n - 1, steps, dtype=torch.float64).tolist()})
    assert sampler.timesteps == grid[::-1] and grid[0] == 0 and grid[-1] == n - 1
    assert sampler.nfe == steps and sampler.label == f"DDIM-{steps}"
    acp = torch.cumprod(1 - beta_schedule("cosine", n), 0)
    x0 = torch.randn(16, 3, generator=torch.Generator().manual_seed(0))
    got = run(sampler, _toy_x0, x0)
    x = x0.double()
    for i in reversed(range(len(grid))):
        t = grid[i]
        a, a_prev = acp[t], (acp[grid[i - 1]] if i > 0 else torch.tensor(1.0, dtype=torch.float64))
        pred = _toy_x0(x.float(), t).double()
        eps = (x - a.sqrt() * pred) / (1 - a).sqrt()
        sigma, sigma_prev = ((1 - a) / a).sqrt(), ((1 - a_prev) / a_prev).sqrt()
        x = a_prev.sqrt() * (x / a.sqrt() + (sigma_prev - sigma) * eps)
    assert torch.allclose(got.double(), x, rtol=1e-4, atol=1e-4), (got.double() - x).abs().max()


def test_ddim_eta1_full_steps_is_ancestral_sampling():
    d = _process(100)
    x0_fn = _gaussian_x0(d)
    ddpm, ddim = DDPM(d), DDIM(d, 1.0)
    ddpm.set_timesteps(100)
    ddim.set_timesteps(100)

    def sample(sampler, n, seed):
        g = torch.Generator().manual_seed(seed)
        return run(sampler, x0_fn, torch.randn(n, 2, generator=g), g)

    n = 10_000
    a, b = sample(ddpm, n, 0), sample(ddim, n, 1)
    qs = torch.tensor([0.05, 0.25, 0.5, 0.75, 0.95])
    assert torch.allclose(a.mean(0), b.mean(0), atol=0.04), (a.mean(0), b.mean(0))
    assert torch.allclose(a.std(0), b.std(0), rtol=0.04), (a.std(0), b.std(0))
    assert torch.allclose(a.quantile(qs, dim=0), b.quantile(qs, dim=0), atol=0.06)
    # Same noise, same path: the two samplers are the same Markov chain.
    assert torch.allclose(sample(ddpm, 8, 2), sample(ddim, 8, 2), atol=1e-4)
    # Deterministic DDIM over all steps also lands on the data distribution.
    det = DDIM(d, 0.0)
    det.set_timesteps(100)
    c = sample(det, n, 3)
    assert torch.allclose(c.mean(0), MU, atol=0.05) and torch.allclose(c.std(0), STD, rtol=0.08)


def test_ddpm_returns_the_mean_at_t0_and_counts_its_steps():
    d = _process(30)
    sampler = DDPM(d)
    sampler.set_timesteps(30)
    assert sampler.timesteps == list(range(29, -1, -1)) and sampler.label == "DDPM-30"
    x, x0 = torch.randn(4, 2), torch.randn(4, 2)
    want, _ = d.q_posterior(x0, x, torch.zeros(4, dtype=torch.long))
    assert torch.equal(sampler.step(x0, 0, x, torch.Generator().manual_seed(0)), want)
    with pytest.raises(ValueError, match="ddpm runs all T=30 steps, not 10"):
        sampler.set_timesteps(10)
    with pytest.raises(ValueError, match="ddim steps=31; valid: 1..T=30"):
        DDIM(d, 0.0).set_timesteps(31)
    assert DDIM(d, 1.0).name == "DDIM(eta=1)"
