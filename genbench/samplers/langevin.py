"""Langevin dynamics (SGLD) on an energy, reflected at the faces of a box.

The "network output" of a step is the energy's gradient dE/dx, which costs a forward and a
backward pass of the energy network: `evals_per_call = 2`. With noise sqrt(2 step_size) the
chain targets exp(-E) (up to the discretisation error of Euler-Maruyama); reflection at the
faces (not clamping, which piles mass on them) keeps the uniform density on the box invariant
when E = 0.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor

from genbench.samplers.base import ModelFn, Rng, Sampler

EnergyFn = Callable[[torch.Tensor], torch.Tensor]


def energy_and_grad(energy_fn: EnergyFn, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(E(x) (N,), dE/dx (N, ...)) for a batch x, detached; parameter gradients untouched."""
    x = x.detach().requires_grad_(True)
    e = energy_fn(x)
    (g,) = torch.autograd.grad(e.sum(), x)
    return e.detach(), g


def energy_grad(energy_fn: EnergyFn) -> ModelFn:
    """The model function `run` calls for Langevin samplers: (x, t) -> dE/dx."""
    return lambda x, t: energy_and_grad(energy_fn, x)[1]


def reflect(x: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor) -> torch.Tensor:
    """Fold x back into [lo, hi] by reflection at the faces (any number of times)."""
    return reflect_with_flips(x, lo, hi)[0]


def reflect_with_flips(x: torch.Tensor, lo, hi) -> tuple[torch.Tensor, torch.Tensor]:
    """(x folded into [lo, hi] by reflection at the faces, a bool tensor shaped like x: whether
    the coordinate was reflected an odd number of times, i.e. its velocity reverses)."""
    w = hi - lo
    z = torch.remainder(x - lo, 2 * w)
    flip = z > w
    return lo + torch.where(flip, 2 * w - z, z), flip


class SGLD(Sampler):
    """x <- x - step_size dE/dx + noise N(0, I), reflected into [lo, hi] when a box is given.

    noise=None is Langevin dynamics for exp(-E): noise = sqrt(2 step_size). lo, hi: (D,) or
    scalars, broadcast against x (N, D).
    """

    name = "SGLD"
    evals_per_call = 2

    def __init__(
        self,
        step_size: float,
        noise: float | None,
        lo: torch.Tensor | float | None = None,
        hi: torch.Tensor | float | None = None,
    ):
        super().__init__()
        self.step_size = step_size
        self.noise = math.sqrt(2 * step_size) if noise is None else noise
        self.lo, self.hi = lo, hi

    def set_timesteps(self, num_steps: int) -> None:
        self.timesteps = list(range(num_steps))

    def step(self, model_output: Tensor, t, x: Tensor, generator: Rng = None) -> Tensor:
        eps = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
        x = x.detach() - self.step_size * model_output + self.noise * eps
        if self.lo is not None:
            lo = torch.as_tensor(self.lo, device=x.device, dtype=x.dtype)
            x = reflect(x, lo, torch.as_tensor(self.hi, device=x.device, dtype=x.dtype))
        return x.detach()


def write_back(buffer: torch.Tensor, idx: torch.Tensor, values: torch.Tensor) -> None:
    """buffer[idx] = values, the last of repeated indices winning. A plain index_put_ keeps an
    unspecified one of them, and on several CPU threads a different one from run to run: the
    EBM's training was not reproducible (two runs of one config, 200 steps: other weights)."""
    order = torch.arange(len(idx), device=idx.device)
    last = torch.full((len(buffer),), -1, dtype=order.dtype, device=idx.device)
    last.scatter_reduce_(0, idx, order, reduce="amax")
    keep = last[idx] == order
    buffer[idx[keep]] = values[keep]
