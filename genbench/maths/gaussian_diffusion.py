"""The Gaussian diffusion process (Ho et al., 2020), apart from any network (improved-diffusion).

Schedules, the forward process q, its posterior, the reverse process p for a given network and
parameterisation, the variational bound's terms and the training loss. Steps are indexed
t = 0..T-1 (t=0 is the first noising step, as in improved-diffusion). Samplers (samplers/ddpm.py,
ddim.py, ...) walk the reverse process from the x0 that `predict_x0` gives.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn

from genbench.maths.diffusion_parameterisations import Parameterisation
from genbench.maths.distributions import (
    discretized_gaussian_log_likelihood,
    gaussian_log_prob,
    normal_kl,
)

Network = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # (x_t, t (B,) long) -> output
VARIANCES = ("beta_tilde", "beta")
PROPOSALS = ("uniform", "vlb")  # how a stochastic bound draws its steps (bound_terms)


def beta_schedule(name: str, num_steps: int) -> torch.Tensor:
    """(T,) float64 betas: "linear" (Ho et al., scaled to T) or "cosine" (Nichol & Dhariwal)."""
    if name == "linear":
        if num_steps <= 20:  # its last beta, 0.02 * 1000 / T, would reach 1: x_T carries nothing
            raise ValueError(
                f"num_steps={num_steps} with the linear schedule (its last beta 20/T reaches 1); "
                "valid: num_steps > 20, or schedule=cosine"
            )
        scale = 1000 / num_steps
        return torch.linspace(scale * 1e-4, scale * 0.02, num_steps, dtype=torch.float64)
    if name == "cosine":
        s = 0.008
        t = torch.arange(num_steps + 1, dtype=torch.float64) / num_steps
        f = torch.cos((t + s) / (1 + s) * math.pi / 2) ** 2
        return (1 - f[1:] / f[:-1]).clamp(max=0.999)
    raise ValueError(f"beta schedule {name!r}; valid: 'linear', 'cosine'")


def _flat_sum(x: torch.Tensor) -> torch.Tensor:
    return x.flatten(1).sum(1)


class GaussianDiffusion(nn.Module):
    """q and p in discrete time for a network whose output `parameterisation` reads as x0.

    Reverse variances are fixed: "beta_tilde" (the posterior variance) or "beta". x0 is clipped to
    [-1, 1] when `clip_denoised` (image data). Coefficients are computed in float64 and kept as
    non-persistent float32 buffers (checkpoints re-derive them from the config).
    """

    def __init__(
        self,
        num_steps: int,
        schedule: str,
        parameterisation: Parameterisation,
        variance: str,
        clip_denoised: bool,
    ):
        super().__init__()
        if variance not in VARIANCES:
            raise ValueError(f"variance={variance!r}; valid: 'beta_tilde', 'beta'")
        self.num_steps, self.clip_denoised = num_steps, clip_denoised
        self.parameterisation = parameterisation
        betas = beta_schedule(schedule, num_steps)
        acp = torch.cumprod(1 - betas, 0)
        acp_prev = torch.cat([torch.ones(1, dtype=torch.float64), acp[:-1]])
        post_var = betas * (1 - acp_prev) / (1 - acp)
        # log(beta_tilde) with t=0's zero replaced by t=1's (improved-diffusion's convention).
        post_logvar = torch.log(torch.cat([post_var[1:2], post_var[1:]]))
        beta_logvar = torch.log(torch.cat([post_var[1:2], betas[1:]]))
        for name, value in {
            "betas": betas,
            "alphas_cumprod": acp,
            "sqrt_acp": acp.sqrt(),
            "sqrt_one_minus_acp": (1 - acp).sqrt(),
            "post_coef_x0": betas * acp_prev.sqrt() / (1 - acp),
            "post_coef_xt": (1 - acp_prev) * (1 - betas).sqrt() / (1 - acp),
            "post_logvar": post_logvar,
            "model_logvar": post_logvar if variance == "beta_tilde" else beta_logvar,
            # SNR(t-1)/SNR(t) - 1: the bound's KL at t is 0.5 * w_t * ||eps - eps_hat||^2.
            "vlb_weight": torch.cat(
                [betas[1:2] / betas[0], betas[1:] / ((1 - betas[1:]) * (1 - acp[:-1]))]
            ),
        }.items():
            self.register_buffer(name, value.float(), persistent=False)

    @staticmethod
    def _at(a: torch.Tensor, t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """a[t] shaped to broadcast against x: (B,) -> (B, 1, ..., 1)."""
        return a[t].view(-1, *([1] * (x.dim() - 1)))

    def _scales(self, t: torch.Tensor, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(sqrt(alpha_bar_t), sqrt(1 - alpha_bar_t)) shaped against x."""
        return self._at(self.sqrt_acp, t, x), self._at(self.sqrt_one_minus_acp, t, x)

    # --- forward process ----------------------------------------------------------------------
    def q_mean_variance(self, x0: torch.Tensor, t: torch.Tensor):
        """Mean and variance of q(x_t | x_0)."""
        return self._at(self.sqrt_acp, t, x0) * x0, self._at(1 - self.alphas_cumprod, t, x0)

    def q_sample(self, x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """x_t = sqrt(alpha_bar_t) x0 + sqrt(1 - alpha_bar_t) noise; t (B,) long."""
        a, s = self._scales(t, x0)
        return a * x0 + s * noise

    def q_posterior(self, x0: torch.Tensor, xt: torch.Tensor, t: torch.Tensor):
        """Mean and log variance of q(x_{t-1} | x_t, x_0)."""
        mean = self._at(self.post_coef_x0, t, xt) * x0 + self._at(self.post_coef_xt, t, xt) * xt
        return mean, self._at(self.post_logvar, t, xt)

    # --- reverse process ----------------------------------------------------------------------
    def predict_x0(self, model: Network, xt: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """x0 predicted by the network at x_t (clipped to [-1, 1] when clip_denoised)."""
        x0 = self.parameterisation.x0(model(xt, t), xt, *self._scales(t, xt))
        return x0.clamp(-1, 1) if self.clip_denoised else x0

    def p_mean_variance(self, model: Network, xt: torch.Tensor, t: torch.Tensor):
        """Mean, log variance of p(x_{t-1} | x_t), and the predicted x0."""
        x0 = self.predict_x0(model, xt, t)
        mean, _ = self.q_posterior(x0, xt, t)
        return mean, self._at(self.model_logvar, t, xt), x0

    # --- training -----------------------------------------------------------------------------
    def sample_steps(self, n: int, how: str, device=None) -> torch.Tensor:
        """(n,) training steps: "uniform", or "vlb": t ∝ w_t, so the mean eps-MSE is the bound's
        KL sum up to a constant (importance-sampled bound; VDM's uniform log-SNR, discretized)."""
        if how == "uniform":
            return torch.randint(0, self.num_steps, (n,), device=device)
        if how == "vlb":
            return torch.multinomial(self.vlb_weight, n, replacement=True).to(device)
        raise ValueError(f"t_sampling={how!r}; valid: 'uniform', 'vlb'")

    def training_loss(
        self,
        model: Network,
        x0: torch.Tensor,
        t: torch.Tensor,
        noise: torch.Tensor,
        x_data: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Per-example loss (B,) of the parameterisation at x_t ~ q(x_t | x0) with `noise`.

        x_data: the levels (long) x0 came from, for losses over levels (grid)."""
        xt = self.q_sample(x0, t, noise)
        a, s = self._scales(t, xt)
        return self.parameterisation.loss(model(xt, t), xt, a, s, x0, noise, x_data)

    # --- the bound ----------------------------------------------------------------------------
    def prior_kl(self, x0: torch.Tensor) -> torch.Tensor:
        """KL(q(x_T | x_0) || N(0, I)) per example (B,), in nats."""
        t = torch.full((len(x0),), self.num_steps - 1, device=x0.device, dtype=torch.long)
        mean, var = self.q_mean_variance(x0, t)
        return _flat_sum(normal_kl(mean, var.log(), 0.0, 0.0))

    def vb_term(
        self,
        model: Network,
        x0: torch.Tensor,
        t: torch.Tensor,
        num_levels: int | None,
        x_data: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """The bound's term at step t per example (B,), in nats, from one draw x_t ~ q(x_t | x0).

        t > 0: KL(q(x_{t-1} | x_t, x_0) || p(x_{t-1} | x_t)); t = 0: the decoder's
        -log p(x_0 | x_1), discretized over `num_levels` levels of `x_data` (long), or a
        Gaussian density if num_levels is None.
        """
        xt = self.q_sample(x0, t, torch.randn_like(x0))
        true_mean, true_logvar = self.q_posterior(x0, xt, t)
        mean, logvar, _ = self.p_mean_variance(model, xt, t)
        kl = _flat_sum(normal_kl(true_mean, true_logvar, mean, logvar))
        if num_levels is None:
            dec = -_flat_sum(gaussian_log_prob(x0, mean, 0.5 * logvar))
        else:
            dec = -_flat_sum(
                discretized_gaussian_log_likelihood(x_data, mean, 0.5 * logvar, num_levels)
            )
        return torch.where(t == 0, dec, kl)

    def bound_terms(
        self,
        model: Network,
        x0: torch.Tensor,
        num_levels: int | None = None,
        x_data: torch.Tensor | None = None,
        t_samples: int | None = None,
        proposal: str = "uniform",
    ) -> dict[str, torch.Tensor]:
        """The bound's pieces: prior (B,), terms (B, M) at steps `t` (B, M), their weights.

        t_samples=None: every step, weights 1 (the exact sum). t_samples=M: an unbiased estimate
        of the sum from M sampled steps, stratified, by `proposal` (PROPOSALS):
        - "uniform": one uniform step per stratum of T/M steps, weighted by the stratum's size;
        - "vlb": the decoder term at t=0 always (weight 1), and the KL terms t >= 1 drawn from
          p(t) ∝ w_t (the weights of the bound's KL terms, as t_sampling="vlb" trains), one per
          stratum of p's CDF, each weighted 1 / (M p(t)): the small-t terms that dominate the
          bound are drawn far more often, so the estimate varies far less between draws.
        total (B,) = prior + (terms * weights).sum(1); weights are (M,) or (B, M).
        """
        b, n, dev = len(x0), self.num_steps, x0.device
        if proposal not in PROPOSALS:
            raise ValueError(f"proposal={proposal!r}; valid: {', '.join(map(repr, PROPOSALS))}")
        if t_samples is None or t_samples >= n:
            steps = torch.arange(n, device=dev).expand(b, n)
            weights = torch.ones(n, device=dev)
        elif proposal == "uniform":
            edges = torch.linspace(0, n, t_samples + 1, device=dev).long()
            sizes = edges[1:] - edges[:-1]
            steps = edges[:-1] + (torch.rand(b, t_samples, device=dev) * sizes).long()
            weights = sizes.float()
        else:
            p = self.vlb_weight[1:].double() / self.vlb_weight[1:].double().sum()
            cdf = p.cumsum(0)
            u = torch.arange(t_samples, device=dev) + torch.rand(b, t_samples, device=dev)
            idx = torch.searchsorted(cdf, (u / t_samples).double().clamp(max=cdf[-1].item()))
            idx = idx.clamp(max=n - 2)
            steps = torch.cat([torch.zeros(b, 1, dtype=torch.long, device=dev), idx + 1], 1)
            weights = torch.cat(
                [torch.ones(b, 1, device=dev), (1 / (t_samples * p[idx])).float()], 1
            )
        terms = [self.vb_term(model, x0, s, num_levels, x_data) for s in steps.unbind(1)]
        terms = torch.stack(terms, 1)
        prior = self.prior_kl(x0)
        return {
            "prior": prior,
            "terms": terms,
            "t": steps,
            "weights": weights,
            "total": prior + (terms * weights).sum(1),
        }
