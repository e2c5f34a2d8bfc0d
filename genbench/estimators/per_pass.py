"""An estimate made once per evaluation pass, shared by every batch and device of the pass.

A stochastic normaliser (the EBM's log Z by AIS) must be one estimate for a whole split: a
per-batch or per-rank estimate would give the shards different normalisers. `PerPass` keeps the
last estimate keyed by (the weights, the pass's seed): an optimiser step, the EMA's swap or a
loaded checkpoint changes the weights' hash and so recomputes it; a new pass with a new seed does
too; the same seed on every rank gives every rank the same estimate.
"""

from __future__ import annotations

from collections.abc import Callable

import torch


def weights_hash(module: torch.nn.Module) -> int:
    """A hash of every parameter and buffer's bytes."""
    return hash(tuple(t.detach().cpu().numpy().tobytes() for t in module.state_dict().values()))


class PerPass:
    """The estimate `compute(seed)` for the current weights and pass seed, cached."""

    def __init__(self) -> None:
        self.seed: int | None = None
        self._cached: tuple = (None, {})  # ((weights hash, seed), estimate)

    def begin(self, seed: int) -> None:
        """A new pass: estimates from `seed` (pass the same seed on every device)."""
        self.seed = int(seed)

    def get(self, module: torch.nn.Module, compute: Callable[[int], dict]) -> dict:
        """The estimate for `module`'s weights and this pass's seed; without begin() the seed
        is drawn from the global generator once. Computed with gradients enabled (AIS moves
        need them) even inside an inference pass."""
        if self.seed is None:
            self.seed = int(torch.randint(2**62, ()))
        key = (weights_hash(module), self.seed)
        if self._cached[0] != key:
            with torch.inference_mode(False), torch.enable_grad():
                self._cached = (key, compute(self.seed))
        return self._cached[1]

    def current(self, module: torch.nn.Module) -> dict | None:
        """The cached estimate if it belongs to `module`'s present weights, else None."""
        key, estimate = self._cached
        return estimate if key is not None and key[0] == weights_hash(module) else None
