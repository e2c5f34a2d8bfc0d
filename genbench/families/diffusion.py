"""Diffusion model (Ho et al., 2020): a network, a Gaussian diffusion process and a sampler.

The process (schedules, q, posterior, bound, loss) is maths/gaussian_diffusion.py; what the
network predicts (eps, v, or "grid": a posterior over x0's K levels, the digits default) is
maths/diffusion_parameterisations.py; samplers (DDPM, DDIM, DPM-Solver++(2M), UniPC) are
samplers/, run by samplers.base.run on the network's x0. This module assembles them: a U-Net
for images, a residual MLP for points (the run's EMA callback averages the weights that
sampling and likelihoods use).

`nll` is the variational bound: prior KL at t=T, the KL terms of every step and a decoder at
t=0 (discretized Gaussian over the K levels for images, a Gaussian density for points).
With nll_t_samples=None it sums all T terms (T network evaluations per example); with an int M
it is an unbiased stratified estimate from M sampled steps: uniform strata of T/M steps, or
(nll_t_proposal="vlb") the decoder term always and M steps drawn from the KL terms' weights.
Either way it is an upper bound on the NLL in expectation: nll_kind = "bound". Validation scores
the same estimator (model selection by the test's own estimator, on fewer images).
"""

from __future__ import annotations

import torch

from genbench.core.spec import DataSpec
from genbench.families.base import GenerativeModule
from genbench.maths.diffusion_parameterisations import make_parameterisation
from genbench.maths.distributions import unit_to_levels
from genbench.maths.gaussian_diffusion import PROPOSALS, GaussianDiffusion
from genbench.nets.unet import TimeMLP, UNet
from genbench.samplers.base import Sampler, run
from genbench.samplers.ddim import DDIM
from genbench.samplers.ddpm import DDPM
from genbench.samplers.dpm_solver import DPMSolverPP
from genbench.samplers.unipc import UniPC

# Every sampler walks this process from the network's x0; only DDIM takes an option (eta).
SAMPLERS = {"ddpm": DDPM, "ddim": DDIM, "dpm_solver++": DPMSolverPP, "unipc": UniPC}


class Diffusion(GenerativeModule):
    family = "diffusion"
    nll_kind = "bound"

    def __init__(
        self,
        spec: DataSpec | dict,
        num_steps: int,
        schedule: str,
        prediction: str,
        variance: str,
        t_sampling: str,
        ce_weight: float,
        sampler: str,
        sampling_steps: int | None,
        eta: float,
        nll_t_samples: int | None,
        nll_t_proposal: str,
        unet: dict,
        points_hidden: int,
        points_blocks: int,
        optimizer: dict,
        scheduler: dict | None,
    ):
        super().__init__(spec)
        s = self.spec
        if prediction == "grid" and not s.is_image:
            prediction = "eps"  # no levels to snap to: continuous data use eps-prediction
        parameterisation = make_parameterisation(
            prediction, s.num_levels if s.is_image else None, ce_weight
        )
        self.diffusion = GaussianDiffusion(
            num_steps, schedule, parameterisation, variance, clip_denoised=s.is_image
        )
        if s.is_image:
            c, h, _ = s.shape
            self.net = UNet(c, h, out_channels=parameterisation.out_channels(c), **unet)
        else:
            self.net = TimeMLP(s.num_dims, points_hidden, points_blocks, dropout=0.0)
        self.sampler: Sampler = self.make_sampler(sampler, sampling_steps or num_steps)
        if nll_t_proposal not in PROPOSALS:
            raise ValueError(
                f"nll_t_proposal={nll_t_proposal!r}; valid: {', '.join(map(repr, PROPOSALS))}"
            )

    # --- the bound --------------------------------------------------------------------------
    def bound_terms(
        self, batch, t_samples: int | None = None, proposal: str = "uniform"
    ) -> dict[str, torch.Tensor]:
        """GaussianDiffusion.bound_terms of a batch with the evaluation network, in nats."""
        x = self.data(batch)
        levels = self.spec.num_levels if self.spec.is_image else None
        return self.diffusion.bound_terms(self.net, self.to_unit(x), levels, x, t_samples, proposal)

    def nll(self, batch) -> torch.Tensor:
        hp = self.hparams
        return self.bound_terms(batch, hp.nll_t_samples, hp.nll_t_proposal)["total"]

    def nll_estimator(self) -> dict:
        hp = self.hparams
        return {
            "name": "variational bound",
            "t_samples": hp.nll_t_samples,  # None: the exact sum of all T terms
            "t_proposal": hp.nll_t_proposal if hp.nll_t_samples is not None else None,
            "num_steps": hp.num_steps,
        }

    # --- sampling ---------------------------------------------------------------------------
    def make_sampler(self, name: str, steps: int) -> Sampler:
        """The sampler `name` (a key of SAMPLERS) over this process at `steps` network calls
        (DDPM: steps must be T)."""
        if name not in SAMPLERS:
            raise ValueError(f"sampler={name!r}; valid: {', '.join(map(repr, SAMPLERS))}")
        if name == "ddim":
            sampler = DDIM(self.diffusion, self.hparams.eta)
        else:
            sampler = SAMPLERS[name](self.diffusion)
        sampler.set_timesteps(steps)
        return sampler

    def configure_sampler(self, sampler: str, steps: int) -> None:
        self.sampler = self.make_sampler(sampler, steps)

    def denoise(self, x: torch.Tensor, t: int) -> torch.Tensor:
        """The samplers' model_fn: the network's x0 at (x_t, step t), clipped for images."""
        tt = torch.full((len(x),), t, device=x.device, dtype=torch.long)
        return self.diffusion.predict_x0(self.net, x, tt)

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        x = torch.randn((n, *self.spec.shape), generator=generator, device=self.device)
        x = run(self.sampler, self.denoise, x, generator)
        return unit_to_levels(x, self.spec.num_levels) if self.spec.is_image else x

    def sampling_cost(self) -> dict:
        return {"nfe": self.sampler.nfe, "sampler": self.sampler.label}

    # --- training ---------------------------------------------------------------------------
    def training_step(self, batch, batch_idx: int) -> torch.Tensor:
        x = self.data(batch)
        x0 = self.to_unit(x)
        t = self.diffusion.sample_steps(len(x0), self.hparams.t_sampling, self.device)
        loss = self.diffusion.training_loss(self.net, x0, t, torch.randn_like(x0), x).mean()
        self.log("train/loss", loss, batch_size=len(x0))
        return loss
