"""A diffusers multistep scheduler as a genbench Sampler, over a GaussianDiffusion's betas.

The scheduler is built with the process's own betas (`trained_betas`) and
prediction_type="sample": `model_output` is the network's x0 at x_t (GaussianDiffusion.predict_x0),
whatever the network predicts, so the solver never sees the parameterisation. Multistep solvers
keep the outputs of earlier steps; a call at the grid's first timestep starts a new trajectory
(`samplers.base.run` is called once per batch), so the history is cleared there.
"""

from __future__ import annotations

from typing import ClassVar

from diffusers import SchedulerMixin
from torch import Tensor

from genbench.maths.gaussian_diffusion import GaussianDiffusion
from genbench.samplers.base import Rng, Sampler


class DiffusersScheduler(Sampler):
    """Base: subclasses name the diffusers class and its options (one file per solver)."""

    scheduler_class: ClassVar[type[SchedulerMixin]]
    scheduler_options: ClassVar[dict] = {}

    def __init__(self, process: GaussianDiffusion):
        super().__init__()
        self.process = process
        self.scheduler = self.scheduler_class(
            num_train_timesteps=process.num_steps,
            trained_betas=process.betas.tolist(),
            prediction_type="sample",
            **self.scheduler_options,
        )
        self.num_steps = 0

    def set_timesteps(self, num_steps: int) -> None:
        n = self.process.num_steps
        if not 1 <= num_steps <= n:
            raise ValueError(f"{self.name} steps={num_steps}; valid: 1..T={n}")
        self.num_steps = num_steps
        self.scheduler.set_timesteps(num_steps)
        self.timesteps = self.scheduler.timesteps.tolist()

    def step(self, model_output: Tensor, t: int, x: Tensor, generator: Rng = None) -> Tensor:
        if not self.timesteps:
            raise RuntimeError(f"{type(self).__name__}: call set_timesteps(num_steps) first")
        if t == self.timesteps[0]:  # a new trajectory: forget the previous one's outputs
            self.scheduler.set_timesteps(self.num_steps)
        return self.scheduler.step(model_output, t, x).prev_sample
