"""The replay buffer of persistent SGLD chains for contrastive divergence (Du & Mordatch 2019).

Each training step draws chain states from the buffer, restarts a `reinit_prob` share of them
from noise, runs SGLD on them and writes them back. The buffer keeps its own generator for the
training noise, apart from the global RNG (which data loaders also draw from): seeded from the
global RNG when first asked for, restored from checkpoints, so a resumed run continues the same
stream. Both travel in checkpoints (`state_dict`); the states are a plain tensor, not a module
buffer (the EMA needs fixed-shape buffers).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from genbench.samplers.langevin import write_back

Noise = Callable[[int, torch.Generator], torch.Tensor]  # (n, generator) -> (n, D) fresh states


class ReplayBuffer:
    def __init__(self, size: int, reinit_prob: float):
        self.size, self.reinit_prob = size, reinit_prob
        self.states = torch.empty(0)  # (size, D) once the first draw fills it
        self._rng: torch.Generator | torch.Tensor | None = None  # the generator (or its state)

    def generator(self, device: torch.device) -> torch.Generator:
        """The training noise's generator, made on first use (or from a restored state)."""
        if not isinstance(self._rng, torch.Generator):
            state, self._rng = self._rng, torch.Generator(device=device)
            self._rng.manual_seed(int(torch.randint(2**62, (1,))))
            if state is not None:  # restored from a checkpoint
                self._rng.set_state(state)
        return self._rng

    def draw(self, n: int, noise: Noise, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """(indices, states) of n chains: buffer states, a reinit_prob share fresh noise. The
        first draw fills the buffer with noise; a restored buffer arrives on the CPU."""
        rng = self.generator(device)
        fill = self.states if len(self.states) else noise(self.size, rng)
        self.states = fill.to(device)
        idx = torch.randint(0, len(self.states), (n,), device=device, generator=rng)
        fresh = torch.rand(n, device=device, generator=rng) < self.reinit_prob
        return idx, torch.where(fresh[:, None], noise(n, rng), self.states[idx])

    def write(self, idx: torch.Tensor, states: torch.Tensor) -> None:
        """The chains' new states back to their slots (the last of repeated indices wins)."""
        write_back(self.states, idx, states)

    def clear(self) -> None:
        """Forget the states (they are in coordinates that no longer hold); keep the generator."""
        self.states = torch.empty(0)

    def state_dict(self) -> dict:
        rng = self._rng.get_state() if isinstance(self._rng, torch.Generator) else self._rng
        return {"replay": self.states.detach().cpu().clone(), "rng": rng}

    def load_state_dict(self, state: dict) -> None:
        self.states, self._rng = state.get("replay", torch.empty(0)), state.get("rng")
