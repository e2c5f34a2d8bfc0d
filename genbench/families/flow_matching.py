"""Flow matching (Lipman et al., 2023; Liu et al., 2023): conditional flow matching, linear path.

Convention: noise at t=0, data at t=1. With x0 ~ N(0, I) and x1 the data (images: uniformly
dequantized into [-1, 1], y = 2 (x + u) / K - 1 with u ~ U[0, 1)^D; points: as they are), the
path x_t = (1 - t) x0 + t x1 has the conditional velocity x1 - x0, and the network v(x_t, t)
(the U-Net of nets/unet.py for images, its TimeMLP for points; continuous t enters the sinusoidal
embedding as t * time_scale) is trained by the mean squared error to it. Its minimiser is the
marginal velocity whose flow carries N(0, I) onto the data (Lipman et al., Theorem 2).

sample(): the ODE dx/dt = v(x, t) from t=0 to 1 with a solver of samplers/ode.py (Euler, Heun or
midpoint; NFE = steps x stages), then images are binned back to their levels,
x = floor((y + 1) K / 2).

nll(): the flow's density by the instantaneous change of variables (estimators/ode_logdensity.py),
integrating from the data (t=1) back to the noise (t=0) on a grid graded towards the data end
(`nll_rho`; the learned velocity is stiff there, where it resolves the dequantization bins), with
the exact divergence up to
`exact_max_dims` dimensions and Hutchinson's estimator beyond. Points: -log p(x), the density
itself (nll_kind "exact", up to the solver's error). Images: a dequantization bound in nats of the
discrete data (nll_kind "bound"); a bin of the K-level data is a cube of side 2/K in [-1, 1], so
    log P(x) >= E_u[log p(y)] + D log(2 / K),
and `nll` returns the one-sample estimate of the right-hand side, negated.
"""

from __future__ import annotations

import math

import torch

from genbench.core.spec import DataSpec
from genbench.estimators.ode_logdensity import ode_log_density, standard_normal_log_prob
from genbench.families.base import GenerativeModule
from genbench.nets.unet import TimeMLP, UNet
from genbench.samplers.base import run
from genbench.samplers.ode import SOLVERS, ODESolver, make_solver

T_SAMPLINGS = ("uniform", "logit_normal")


class FlowMatching(GenerativeModule):
    family = "flow_matching"
    nll_kind = "bound"  # images; points set "exact" per instance (a true density)

    def __init__(
        self,
        spec: DataSpec | dict,
        solver: str,
        sampling_steps: int,
        nll_solver: str,
        nll_steps: int,
        nll_rho: float,
        exact_max_dims: int,
        t_sampling: str,
        time_scale: float,
        unet: dict,
        points_hidden: int,
        points_blocks: int,
        optimizer: dict,
        scheduler: dict | None,
    ):
        super().__init__(spec)
        for key, name in (("solver", solver), ("nll_solver", nll_solver)):
            if name not in SOLVERS:
                raise ValueError(f"model.{key}={name!r}; valid: {sorted(SOLVERS)}")
        if t_sampling not in T_SAMPLINGS:
            raise ValueError(f"model.t_sampling={t_sampling!r}; valid: {list(T_SAMPLINGS)}")
        s = self.spec
        if s.is_image:
            c, h, _ = s.shape
            self.net = UNet(c, h, out_channels=c, **unet)
        else:
            self.net = TimeMLP(s.num_dims, points_hidden, points_blocks, dropout=0.0)
            self.nll_kind = "exact"
        # The sampler in use: configure_sampler changes it for quality-vs-compute curves.
        self.sampler_name, self.sampler_steps = solver, sampling_steps

    # --- data space <-> model space ---------------------------------------------------------
    def dequantize(self, x: torch.Tensor) -> torch.Tensor:
        """Images long (B, C, H, W) in [0, K) -> float y = 2 (x + u) / K - 1, u ~ U[0, 1);
        points: float as they are."""
        if not self.spec.is_image:
            return x.to(self.dtype)
        u = torch.rand(x.shape, device=x.device, dtype=self.dtype)
        return 2 * (x.to(self.dtype) + u) / self.spec.num_levels - 1

    def quantize(self, y: torch.Tensor) -> torch.Tensor:
        """The level whose bin of [-1, 1] holds y: long in [0, K) (points unchanged)."""
        if not self.spec.is_image:
            return y
        k = self.spec.num_levels
        return torch.floor((y + 1) * k / 2).clamp(0, k - 1).long()

    def velocity(self, x: torch.Tensor, t) -> torch.Tensor:
        """v(x, t): x (B, ...) at time t (a float, or (B,) floats) in [0, 1] -> (B, ...)."""
        tt = torch.as_tensor(t, device=x.device, dtype=x.dtype).expand(len(x))
        return self.net(x, tt * self.hparams.time_scale)

    # --- likelihood -------------------------------------------------------------------------
    def log_prob(self, x: torch.Tensor, solver: ODESolver, exact_max_dims: int) -> torch.Tensor:
        """Images: the one-sample dequantized lower bound on log P(x) (nats, (B,)) of long x;
        points: log p(x). `solver` runs from t=1 (data) to t=0 (noise)."""
        y = self.dequantize(x)
        log_p, _ = ode_log_density(
            self.velocity, y, solver, standard_normal_log_prob, exact_max_dims
        )
        if not self.spec.is_image:
            return log_p
        return log_p + self.spec.num_dims * math.log(2 / self.spec.num_levels)

    def nll(self, batch) -> torch.Tensor:
        hp = self.hparams
        solver = make_solver(hp.nll_solver, hp.nll_steps, 1.0, 0.0, hp.nll_rho, 1.0)
        return -self.log_prob(self.data(batch), solver, hp.exact_max_dims)

    def nll_estimator(self) -> dict:
        hp = self.hparams
        exact = self.spec.num_dims <= hp.exact_max_dims
        return {
            "name": "ODE log-density" + (" (dequantised bound)" if self.spec.is_image else ""),
            "solver": hp.nll_solver,
            "steps": hp.nll_steps,
            "rho": hp.nll_rho,
            "divergence": "exact" if exact else "hutchinson (1 Rademacher probe)",
        }

    # --- sampling ---------------------------------------------------------------------------
    def configure_sampler(self, sampler: str, steps: int) -> None:
        """Sample with the ODE solver `sampler` ("euler" | "heun" | "midpoint") at `steps`
        steps (NFE = steps x the solver's stages)."""
        make_solver(sampler, steps, 0.0, 1.0)  # refuses a bad name or step count in one line
        self.sampler_name, self.sampler_steps = sampler, steps

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        noise = torch.randn(n, *self.spec.shape, generator=generator, device=self.device)
        solver = make_solver(self.sampler_name, self.sampler_steps, 0.0, 1.0)
        return self.quantize(run(solver, self.velocity, noise.to(self.dtype)))

    def sampling_cost(self) -> dict:
        solver = make_solver(self.sampler_name, self.sampler_steps, 0.0, 1.0)
        return {"nfe": solver.nfe, "sampler": solver.label}

    # --- training ---------------------------------------------------------------------------
    def sample_times(self, n: int) -> torch.Tensor:
        """(n,) training times in [0, 1]: "uniform", or "logit_normal" (sigmoid of N(0, 1),
        Esser et al., 2024: more weight on the middle of the path, where the target is hardest)."""
        if self.hparams.t_sampling == "uniform":
            return torch.rand(n, device=self.device, dtype=self.dtype)
        return torch.sigmoid(torch.randn(n, device=self.device, dtype=self.dtype))

    def training_loss(self, x: torch.Tensor) -> torch.Tensor:
        """Per-example mean squared error (B,) of v(x_t, t) to the conditional velocity x1 - x0."""
        x1 = self.dequantize(x)
        x0 = torch.randn_like(x1)
        t = self.sample_times(len(x1)).view(-1, *([1] * (x1.dim() - 1)))
        xt = (1 - t) * x0 + t * x1
        return ((self.velocity(xt, t.flatten()) - (x1 - x0)) ** 2).flatten(1).mean(1)

    def training_step(self, batch, batch_idx: int) -> torch.Tensor:
        x = self.data(batch)
        loss = self.training_loss(x).mean()
        self.log("train/loss", loss, batch_size=len(x))
        return loss
