"""Log-density of a continuous normalizing flow by the instantaneous change of variables.

For dx/dt = v(x, t), d/dt log p_t(x(t)) = -div v(x(t), t) (Chen et al., 2018). Integrating the
augmented state [x, I] with dI/dt = div v from the data end (x(t_data) = x, I = 0) to the base
end gives z = x(t_base) and

    log p_data(x) = log p_base(z) + I(t_base),

whichever way time runs (the solver's t_start is t_data, its t_end is t_base). The divergence is
exact up to `exact_max_dims` dimensions (D vector-Jacobian products of one forward pass, the sum
of the Jacobian's diagonal), and beyond it Hutchinson's estimator e^T (dv/dx) e with one
Rademacher vector e per example, held fixed along the path (FFJORD, Grathwohl et al., 2019): the
path x(t) does not depend on e, so the log-density estimate is unbiased, up to the solver error.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from genbench.samplers.base import run
from genbench.samplers.ode import ODESolver

VelocityFn = Callable[[torch.Tensor, float], torch.Tensor]


def _flat(v: torch.Tensor) -> torch.Tensor:
    return v.flatten(1)


def divergence_exact(
    velocity: VelocityFn, x: torch.Tensor, t: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """(v (B, ...), div v (B,)) at x (B, ...), the divergence as the sum over the D dimensions
    of dv_i/dx_i, one vector-Jacobian product each (examples must not interact in `velocity`)."""
    with torch.enable_grad():
        x = x.detach().requires_grad_(True)
        v = velocity(x, t)
        flat = _flat(v)
        div = torch.zeros(len(x), device=x.device, dtype=flat.dtype)
        for i in range(flat.shape[1]):
            (g,) = torch.autograd.grad(flat[:, i].sum(), x, retain_graph=True)
            div = div + _flat(g)[:, i]
    return v.detach(), div.detach()


def divergence_hutchinson(
    velocity: VelocityFn, x: torch.Tensor, t: float, noise: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """(v, e^T (dv/dx) e (B,)) at x (B, ...) for probe vectors `noise` e shaped like x:
    an unbiased estimate of div v when E[e e^T] = I. One vector-Jacobian product."""
    with torch.enable_grad():
        x = x.detach().requires_grad_(True)
        v = velocity(x, t)
        (g,) = torch.autograd.grad(v, x, grad_outputs=noise)
    return v.detach(), (_flat(g) * _flat(noise)).sum(1).detach()


def ode_log_density(
    velocity: VelocityFn,
    x: torch.Tensor,
    solver: ODESolver,
    base_log_prob: Callable[[torch.Tensor], torch.Tensor],
    exact_max_dims: int,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(log p_data(x) (B,) in nats, z = x at the base end, shaped like x).

    velocity(x (B, ...), t float) -> (B, ...); solver: a set ODESolver from the data time to the
    base time; base_log_prob(z) -> (B,). The divergence is exact when D = x[0].numel() <=
    exact_max_dims, else Hutchinson's with Rademacher probes drawn from `generator`.
    Works under torch.inference_mode (it turns it off for the network's gradients).
    """
    b, shape = len(x), x.shape[1:]
    d = x[0].numel()
    with torch.inference_mode(False):
        x = x.clone()  # a normal tensor even if x was made under inference mode
        noise = None
        if d > exact_max_dims:
            noise = torch.randint(0, 2, x.shape, generator=generator, device=x.device)
            noise = noise.to(x.dtype) * 2 - 1

        def augmented(state: torch.Tensor, t: float) -> torch.Tensor:
            xt = state[:, :d].reshape(b, *shape)
            if noise is None:
                v, div = divergence_exact(velocity, xt, t)
            else:
                v, div = divergence_hutchinson(velocity, xt, t, noise)
            return torch.cat([_flat(v), div[:, None].to(state.dtype)], 1)

        state = torch.cat([_flat(x), x.new_zeros(b, 1)], 1)
        state = run(solver, augmented, state)
        z = state[:, :d].reshape(b, *shape)
        return base_log_prob(z) + state[:, d], z


def standard_normal_log_prob(z: torch.Tensor) -> torch.Tensor:
    """log N(z; 0, I) summed per example: (B, ...) -> (B,), in nats."""
    return -0.5 * (_flat(z) ** 2 + math.log(2 * math.pi)).sum(1)
