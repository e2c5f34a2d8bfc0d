"""DDIM (Song et al., 2021) over S <= T steps of a Gaussian diffusion.

`model_output` is the network's x0 at x_t (GaussianDiffusion.predict_x0); eps is the one
consistent with it, eps = (x_t - sqrt(a_t) x0) / sqrt(1 - a_t), and with a = alpha_bar,

    x_prev = sqrt(a_prev) x0 + sqrt(1 - a_prev - sigma^2) eps + sigma z,
    sigma  = eta sqrt((1 - a_prev) / (1 - a_t) (1 - a_t / a_prev)),

where prev is the previous step of the grid (a_prev = 1 after the last step, t=0). eta=0 is
deterministic (the probability-flow ODE's first-order step); eta=1 with S=T is DDPM.
"""

from __future__ import annotations

import torch
from torch import Tensor

from genbench.maths.gaussian_diffusion import GaussianDiffusion
from genbench.samplers.base import Rng, Sampler


class DDIM(Sampler):
    """S evenly spaced steps of 0..T-1, always including T-1 and 0 (nfe = S, or fewer where
    rounding merges steps)."""

    def __init__(self, process: GaussianDiffusion, eta: float):
        super().__init__()
        if eta < 0:
            raise ValueError(f"eta={eta} must be >= 0")
        self.process, self.eta = process, eta
        self.name = "DDIM" if eta == 0 else f"DDIM(eta={eta:g})"
        self._prev: dict[int, int] = {}

    def set_timesteps(self, num_steps: int) -> None:
        n = self.process.num_steps
        if not 1 <= num_steps <= n:
            raise ValueError(f"ddim steps={num_steps}; valid: 1..T={n}")
        grid = sorted({round(v) for v in torch.linspace(0, n - 1, num_steps).tolist()})
        self.timesteps = grid[::-1]
        self._prev = {t: grid[i - 1] if i > 0 else -1 for i, t in enumerate(grid)}

    def step(self, model_output: Tensor, t: int, x: Tensor, generator: Rng = None) -> Tensor:
        p, prev = self.process, self._prev[t]
        acp = p.alphas_cumprod[t]
        acp_prev = p.alphas_cumprod[prev] if prev >= 0 else torch.ones_like(acp)
        eps = (x - p.sqrt_acp[t] * model_output) / p.sqrt_one_minus_acp[t]
        sigma = self.eta * torch.sqrt((1 - acp_prev) / (1 - acp) * (1 - acp / acp_prev))
        direction = torch.sqrt((1 - acp_prev - sigma**2).clamp(min=0)) * eps
        x_prev = acp_prev.sqrt() * model_output + direction
        if self.eta > 0 and prev >= 0:
            z = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
            x_prev = x_prev + sigma * z
        return x_prev
