"""The one sampler interface, in the shape of diffusers' schedulers.

A sampler fixes a grid with `set_timesteps(num_steps)`; `timesteps` lists the points at which
the network is called, in order; `step(model_output, t, x, generator)` turns the network's
output at `t` into the next state. Every sampler runs with the same loop (`run`), whatever it
is: ancestral diffusion steps, DDIM, an ODE solver (a two-stage solver lists each stage as a
timestep and keeps its state between calls, as diffusers' HeunDiscreteScheduler does) or a
Langevin chain (the "network output" is the energy's gradient).

`nfe` counts network evaluations per sample honestly: a forward pass is one, and a gradient of
the network with respect to its input (Langevin) is two, a forward and a backward pass.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence

import torch
from torch import Tensor

ModelFn = Callable[[torch.Tensor, object], torch.Tensor]
# A sampler's source of randomness: None draws from torch's global generator.
Rng = torch.Generator | None


class Sampler(ABC):
    """Base of every sampler: a grid of network calls and one update per call."""

    name: str = ""  # e.g. "DDIM", "Heun", "SGLD"
    evals_per_call: int = 1  # 2 where a call is a forward and a backward pass

    def __init__(self) -> None:
        self.timesteps: Sequence = []

    @abstractmethod
    def set_timesteps(self, num_steps: int) -> None:
        """Fix the grid: afterwards `timesteps` lists the network calls in order."""

    @abstractmethod
    def step(self, model_output: Tensor, t, x: Tensor, generator: Rng = None) -> Tensor:
        """The state after the network's output `model_output` at timestep `t`, from `x`."""

    @property
    def nfe(self) -> int:
        """Network evaluations per sample for the current grid."""
        return len(self.timesteps) * self.evals_per_call

    @property
    def label(self) -> str:
        """How tables name this sampler, e.g. "DDIM-50" (the number is its NFE)."""
        return f"{self.name}-{self.nfe}"


def run(
    sampler: Sampler,
    model_fn: ModelFn,
    x: torch.Tensor,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Run `sampler` from the initial state `x`: x <- step(model_fn(x, t), t, x) over timesteps."""
    for t in sampler.timesteps:
        x = sampler.step(model_fn(x, t), t, x, generator)
    return x
