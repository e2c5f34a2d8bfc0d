"""DDPM: ancestral sampling of a Gaussian diffusion over all T steps (Ho et al., 2020).

`model_output` is the network's x0 at x_t (GaussianDiffusion.predict_x0); a step draws x_{t-1}
from p(x_{t-1} | x_t) = N(posterior mean of q(x_{t-1} | x_t, x0), the process's fixed
variance). The last step (t=0) returns the mean, with no noise.
"""

from __future__ import annotations

import torch
from torch import Tensor

from genbench.maths.gaussian_diffusion import GaussianDiffusion
from genbench.samplers.base import Rng, Sampler


class DDPM(Sampler):
    """Ancestral sampling: timesteps T-1, ..., 0 (nfe = T)."""

    name = "DDPM"

    def __init__(self, process: GaussianDiffusion):
        super().__init__()
        self.process = process

    def set_timesteps(self, num_steps: int) -> None:
        n = self.process.num_steps
        if num_steps != n:
            raise ValueError(
                f"ddpm runs all T={n} steps, not {num_steps}; for fewer steps use 'ddim' "
                "(eta=1 is ancestral sampling on the respaced grid)"
            )
        self.timesteps = list(range(n - 1, -1, -1))

    def step(self, model_output: Tensor, t: int, x: Tensor, generator: Rng = None) -> Tensor:
        tt = torch.full((len(x),), t, device=x.device, dtype=torch.long)
        mean, _ = self.process.q_posterior(model_output, x, tt)
        if t == 0:
            return mean
        noise = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
        return mean + torch.exp(0.5 * self.process.model_logvar[t]) * noise
