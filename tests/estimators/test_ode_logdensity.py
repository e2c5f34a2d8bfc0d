"""The ODE log-density: the exact divergence is the trace of autograd's full Jacobian,
Hutchinson's estimate is e^T J e and unbiased, and the log-density of a linear flow carrying
N(0, I) onto a correlated 2-D Gaussian matches the closed form, whichever way time runs."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from genbench.estimators.ode_logdensity import (
    divergence_exact,
    divergence_hutchinson,
    ode_log_density,
    standard_normal_log_prob,
)
from genbench.samplers.ode import make_solver


class TinyConvField(nn.Module):
    """A nonlinear, time-dependent velocity on (B, 2, 3, 3) images; examples do not interact."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.a = nn.Conv2d(3, 8, 3, padding=1)
        self.b = nn.Conv2d(8, 2, 3, padding=1)

    def forward(self, x: torch.Tensor, t: float) -> torch.Tensor:
        tt = torch.full_like(x[:, :1], t)
        return self.b(torch.tanh(self.a(torch.cat([x, tt], 1)))) * (1 + t)


def test_exact_divergence_is_the_trace_of_autograds_jacobian():
    field = TinyConvField().double()
    x = torch.randn(4, 2, 3, 3, dtype=torch.float64)
    v, div = divergence_exact(field, x, 0.3)
    assert torch.equal(v, field(x, 0.3))
    for b in range(len(x)):
        jac = torch.autograd.functional.jacobian(
            lambda y, b=b: field(y.view(1, 2, 3, 3), 0.3).flatten(), x[b].flatten()
        )
        assert torch.allclose(div[b], jac.trace(), rtol=1e-12, atol=1e-12), (div[b], jac.trace())
    # Hutchinson's value is e^T J e for the given probe, and averages to the trace.
    e = torch.randint(0, 2, x.shape, dtype=torch.float64) * 2 - 1
    _, est = divergence_hutchinson(field, x, 0.3, e)
    jac0 = torch.autograd.functional.jacobian(
        lambda y: field(y.view(1, 2, 3, 3), 0.3).flatten(), x[0].flatten()
    )
    assert torch.allclose(est[0], e[0].flatten() @ jac0 @ e[0].flatten(), rtol=1e-12)
    n = 400
    probes = torch.randint(0, 2, (n, 2, 3, 3), dtype=torch.float64) * 2 - 1
    _, ests = divergence_hutchinson(field, x[:1].expand(n, -1, -1, -1), 0.3, probes)
    se = ests.std() / n**0.5
    assert abs(ests.mean() - jac0.trace()) < 4 * se, (ests.mean(), jac0.trace(), se)


# A linear flow: the flow-matching velocity of the linear path x_t = (1 - t) z + t y,
# z ~ N(0, I), y ~ N(MU, SIGMA), is v(x, t) = MU + (t SIGMA - (1 - t) I) S_t^-1 (x - t MU),
# S_t = (1 - t)^2 I + t^2 SIGMA, and it carries N(0, I) at t=0 exactly onto N(MU, SIGMA) at t=1.
MU = torch.tensor([0.5, -1.0], dtype=torch.float64)
SIGMA = torch.tensor([[0.30, 0.12], [0.12, 0.20]], dtype=torch.float64)
EYE = torch.eye(2, dtype=torch.float64)


def gaussian_velocity(x: torch.Tensor, t: float) -> torch.Tensor:
    s_t = (1 - t) ** 2 * EYE + t**2 * SIGMA
    m = (t * SIGMA - (1 - t) * EYE) @ torch.linalg.inv(s_t)
    return MU + (x - t * MU) @ m.T


def typical_points(n: int, seed: int) -> torch.Tensor:
    """(n, 2) draws from N(MU, SIGMA), where the test's tolerances are stated."""
    gen = torch.Generator().manual_seed(seed)
    return (
        MU + torch.randn(n, 2, generator=gen, dtype=torch.float64) @ torch.linalg.cholesky(SIGMA).T
    )


def closed_form(x: torch.Tensor) -> torch.Tensor:
    return torch.distributions.MultivariateNormal(MU, SIGMA).log_prob(x)


@pytest.mark.parametrize("solver", ["heun", "midpoint", "euler"])
def test_linear_flow_log_density_matches_the_gaussian(solver):
    x = typical_points(64, seed=0)
    steps, tol = (500, 1e-4) if solver != "euler" else (2000, 2e-2)
    got, z = ode_log_density(
        gaussian_velocity, x, make_solver(solver, steps, 1.0, 0.0), standard_normal_log_prob, 64
    )
    assert (got - closed_form(x)).abs().max() < tol, (got - closed_form(x)).abs().max()
    # z is where the flow sends x: whitened by the exact linear map at t=0.
    # The flow map of this path is x = MU + SIGMA^(1/2) z (S_t's roots commute over t).
    evals, evecs = torch.linalg.eigh(SIGMA)
    root = evecs @ torch.diag(evals.sqrt()) @ evecs.T
    assert torch.allclose(MU + z @ root.T, x, atol=10 * tol)
    # Fewer steps: a visible error of the order the solver predicts (the check can fail).
    few, _ = ode_log_density(
        gaussian_velocity, x, make_solver(solver, 4, 1.0, 0.0), standard_normal_log_prob, 64
    )
    assert (few - closed_form(x)).abs().max() > tol


def test_reversed_time_convention_and_inference_mode():
    """Data at t=0 and noise at t=1 (v'(x, t) = -v(x, 1 - t)) gives the same density, also
    under torch.inference_mode, as evaluation runs it."""
    x = typical_points(16, seed=1)
    with torch.inference_mode():
        got, _ = ode_log_density(
            lambda y, t: -gaussian_velocity(y, 1 - t),
            x,
            make_solver("heun", 500, 0.0, 1.0),
            standard_normal_log_prob,
            64,
        )
    assert (got - closed_form(x)).abs().max() < 1e-4


def test_hutchinson_beyond_exact_max_dims_is_unbiased():
    """exact_max_dims=1 < D=2 switches to Hutchinson; the path does not depend on the probes, so
    the mean over many probes is the exact-divergence result on the same grid."""
    n = 1000
    x = torch.tensor([[0.2, -0.8]], dtype=torch.float64)
    exact, _ = ode_log_density(
        gaussian_velocity, x, make_solver("heun", 20, 1.0, 0.0), standard_normal_log_prob, 2
    )
    gen = torch.Generator().manual_seed(0)
    est, _ = ode_log_density(
        gaussian_velocity,
        x.expand(n, 2),
        make_solver("heun", 20, 1.0, 0.0),
        standard_normal_log_prob,
        1,
        generator=gen,
    )
    assert est.std() > 1e-2  # really a stochastic estimate
    assert abs(est.mean() - exact) < 4 * est.std() / n**0.5, (est.mean(), exact)
