"""DPM-Solver++(2M) and UniPC (diffusers' schedulers behind the Sampler interface) solve the
probability-flow ODE of *our* process: on Gaussian data, with the exact denoiser, they land on
the closed-form ODE solution far closer than DDIM at the same NFE, and a run restarts cleanly."""

from __future__ import annotations

import re

import pytest
import torch

from genbench.maths.diffusion_parameterisations import EpsPrediction
from genbench.maths.gaussian_diffusion import GaussianDiffusion
from genbench.samplers.base import run
from genbench.samplers.ddim import DDIM
from genbench.samplers.dpm_solver import DPMSolverPP
from genbench.samplers.unipc import UniPC

MU, STD = torch.tensor([0.5, -1.0]), torch.tensor([0.3, 1.2])


def _gaussian_x0(d: GaussianDiffusion):
    """The exact E[x0 | x_t] for data N(MU, STD^2): the optimal x0-predictor."""

    def x0(xt: torch.Tensor, t: int) -> torch.Tensor:
        a, var = d.sqrt_acp[t], 1 - d.alphas_cumprod[t]
        return MU + a * STD**2 * (xt - a * MU) / (a**2 * STD**2 + var)

    return x0


def _exact(d: GaussianDiffusion, x_start: torch.Tensor, t: int) -> torch.Tensor:
    """float64: the probability-flow ODE carried exactly from step T-1 to step t (for Gaussian
    data it maps N(a_T MU, a_T STD^2 + 1 - a_T) linearly onto N(a_t MU, ...)), then E[x0 | x_t]:
    where every sampler here ends after its last network call, at step t."""
    acp = torch.cumprod(1 - d.betas.double(), 0)
    a_start, a_t = acp[-1], acp[t]
    mu, var = MU.double(), STD.double() ** 2
    scale = ((a_t * var + 1 - a_t) / (a_start * var + 1 - a_start)).sqrt()
    xt = a_t.sqrt() * mu + scale * (x_start.double() - a_start.sqrt() * mu)
    return mu + a_t.sqrt() * var * (xt - a_t.sqrt() * mu) / (a_t * var + 1 - a_t)


@pytest.mark.parametrize("schedule", ["linear", "cosine"])
def test_multistep_solvers_follow_the_ode_of_our_process(schedule):
    d = GaussianDiffusion(1000, schedule, EpsPrediction(), "beta_tilde", False)
    x_start = torch.randn(2048, 2, generator=torch.Generator().manual_seed(0))
    errors = {}
    for name, make in (
        ("ddim", lambda: DDIM(d, 0.0)),
        ("dpm", lambda: DPMSolverPP(d)),
        ("unipc", lambda: UniPC(d)),
    ):
        for steps in (10, 20):
            sampler = make()
            sampler.set_timesteps(steps)
            assert sampler.nfe == steps == len(sampler.timesteps)
            out = run(sampler, _gaussian_x0(d), x_start.clone())
            err = (out.double() - _exact(d, x_start, sampler.timesteps[-1])).abs().max().item()
            errors[name, steps] = err
    for steps in (10, 20):  # DDIM is first order: ~0.4-0.9 here; the others are 6-40x closer
        assert errors["dpm", steps] < errors["ddim", steps] / 5, errors
        assert errors["unipc", steps] < errors["ddim", steps] / 5, errors
    assert max(errors["dpm", 20], errors["unipc", 20]) < 0.1, errors


@pytest.mark.parametrize("cls", [DPMSolverPP, UniPC])
def test_solver_history_is_cleared_between_runs(cls):
    """samplers.base.run is called once per batch: a second batch must not see the first's
    history, so the same start gives the same samples whatever ran before."""
    d = GaussianDiffusion(100, "linear", EpsPrediction(), "beta_tilde", False)
    sampler = cls(d)
    sampler.set_timesteps(8)
    assert sampler.label == f"{cls.name}-8" and sampler.timesteps[0] == 99
    x0_fn = _gaussian_x0(d)
    a, b = torch.randn(2, 16, 2, generator=torch.Generator().manual_seed(0))
    first = run(sampler, x0_fn, a.clone())
    run(sampler, x0_fn, b.clone())
    assert torch.equal(run(sampler, x0_fn, a.clone()), first)
    with pytest.raises(ValueError, match=re.escape(f"{cls.name} steps=101; valid: 1..T=100")):
        sampler.set_timesteps(101)
