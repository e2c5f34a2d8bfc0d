"""Diffusion model (Ho et al., 2020): epsilon-, v- or grid-prediction, DDPM and DDIM samplers.

"grid" (discrete images only): the network outputs K logits per pixel; adding the exact
log-likelihood log N(x_t; sqrt(acp_t) c_k, 1 - acp_t) of each level c_k gives a posterior over
x0's level whose mean is the predicted x0 (so the reverse mean is still a function of x_t alone
and the bound is the ordinary one). At noise below the half-bin width the likelihood snaps x0
onto the grid, which removes most of the bound's small-t terms (on digits ~2.8 -> ~2.0 bpd).

`GaussianDiffusion` holds the process (schedules, q_sample, posterior, losses, bound terms,
samplers) apart from the network, as in improved-diffusion. `Diffusion` is the
GenerativeModule: a U-Net for images, a residual MLP for points (the run's EMA callback averages
the weights that sampling and likelihoods use).

`nll` is the variational bound: prior KL at t=T, the KL terms of every step and a decoder at
t=0 (discretized Gaussian over the K levels for images, a Gaussian density for points).
With nll_t_samples=None it sums all T terms (T network evaluations per example); with an int M
it is the unbiased stratified estimate from M sampled steps (one per stratum of T/M steps,
weighted by the stratum size): the default config uses M=100 for the test split and M=16 for
validation. Either way it is an upper bound on the NLL in expectation: nll_kind = "bound".
"""

from __future__ import annotations

import math

import torch
from torch import nn

from genbench.core.spec import DataSpec
from genbench.families.base import GenerativeModule
from genbench.nets.unet import TimeMLP, UNet

LOG_2PI = math.log(2 * math.pi)


# --- schedules and distributions --------------------------------------------------------------
def beta_schedule(name: str, num_steps: int) -> torch.Tensor:
    """(T,) float64 betas: "linear" (Ho et al., scaled to T) or "cosine" (Nichol & Dhariwal)."""
    if name == "linear":
        scale = 1000 / num_steps
        return torch.linspace(scale * 1e-4, scale * 0.02, num_steps, dtype=torch.float64)
    if name == "cosine":
        s = 0.008
        t = torch.arange(num_steps + 1, dtype=torch.float64) / num_steps
        f = torch.cos((t + s) / (1 + s) * math.pi / 2) ** 2
        return (1 - f[1:] / f[:-1]).clamp(max=0.999)
    raise ValueError(f"beta schedule {name!r}; valid: 'linear', 'cosine'")


def normal_kl(
    mean1: torch.Tensor, logvar1: torch.Tensor, mean2: torch.Tensor, logvar2: torch.Tensor
) -> torch.Tensor:
    """Elementwise KL(N(mean1, e^logvar1) || N(mean2, e^logvar2)) in nats."""
    return 0.5 * (
        -1.0
        + logvar2
        - logvar1
        + torch.exp(logvar1 - logvar2)
        + (mean1 - mean2) ** 2 * torch.exp(-logvar2)
    )


def _log_normal_interval(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """log(Phi(b) - Phi(a)) for a < b, accurate in both tails (reflects intervals right of 0)."""
    flip = a > 0
    lo, hi = torch.where(flip, -b, a), torch.where(flip, -a, b)
    log_hi, log_lo = torch.special.log_ndtr(hi), torch.special.log_ndtr(lo)
    return log_hi + torch.log(-torch.expm1((log_lo - log_hi).clamp(max=-1e-30)))


def discretized_gaussian_log_likelihood(
    x: torch.Tensor, mean: torch.Tensor, log_scale: torch.Tensor, num_levels: int
) -> torch.Tensor:
    """log P(x) of x long in [0, K) under N(mean, e^(2 log_scale)) binned on the K-level grid.

    Level k is the interval of width 2/(K-1) around -1 + 2k/(K-1) in [-1, 1]; the two end
    levels take the tails, so the K probabilities sum to one. Elementwise, in nats.
    """
    half = 1.0 / (num_levels - 1)
    centred = x.float() * 2 * half - 1 - mean
    inv_std = torch.exp(-log_scale)
    inf = torch.tensor(math.inf, device=mean.device, dtype=mean.dtype)
    lo = torch.where(x == 0, -inf, (centred - half) * inv_std)
    hi = torch.where(x == num_levels - 1, inf, (centred + half) * inv_std)
    return _log_normal_interval(lo, hi)


def gaussian_log_likelihood(
    x: torch.Tensor, mean: torch.Tensor, logvar: torch.Tensor
) -> torch.Tensor:
    """Elementwise log N(x; mean, e^logvar) in nats (the t=0 decoder for continuous data)."""
    return -0.5 * (LOG_2PI + logvar + (x - mean) ** 2 * torch.exp(-logvar))


def _flat_sum(x: torch.Tensor) -> torch.Tensor:
    return x.flatten(1).sum(1)


# --- the process ------------------------------------------------------------------------------
class GaussianDiffusion(nn.Module):
    """The forward process q and the reverse process p for a given network, in discrete time.

    Steps are indexed t = 0..T-1 (t=0 is the first noising step, as in improved-diffusion).
    `model(x_t, t)` returns eps, v or K level logits per channel (`prediction`). Reverse
    variances are fixed: "beta_tilde" (the posterior variance) or "beta". Coefficients are
    computed in float64 and kept as non-persistent float32 buffers (checkpoints re-derive them
    from the config).
    """

    def __init__(
        self,
        num_steps: int = 1000,
        schedule: str = "linear",
        prediction: str = "eps",
        variance: str = "beta_tilde",
        clip_denoised: bool = True,
        num_levels: int | None = None,
    ):
        super().__init__()
        if prediction not in ("eps", "v", "grid"):
            raise ValueError(f"prediction={prediction!r}; valid: 'eps', 'v', 'grid'")
        if prediction == "grid" and not num_levels:
            raise ValueError("prediction='grid' needs discrete data (num_levels)")
        self.num_levels = num_levels
        if variance not in ("beta_tilde", "beta"):
            raise ValueError(f"variance={variance!r}; valid: 'beta_tilde', 'beta'")
        self.num_steps, self.prediction, self.clip_denoised = num_steps, prediction, clip_denoised
        betas = beta_schedule(schedule, num_steps)
        acp = torch.cumprod(1 - betas, 0)
        acp_prev = torch.cat([torch.ones(1, dtype=torch.float64), acp[:-1]])
        post_var = betas * (1 - acp_prev) / (1 - acp)
        # log(beta_tilde) with t=0's zero replaced by t=1's (improved-diffusion's convention).
        post_logvar = torch.log(torch.cat([post_var[1:2], post_var[1:]]))
        logvar = (
            post_logvar
            if variance == "beta_tilde"
            else torch.log(torch.cat([post_var[1:2], betas[1:]]))
        )
        for name, value in {
            "betas": betas,
            "alphas_cumprod": acp,
            "alphas_cumprod_prev": acp_prev,
            "sqrt_acp": acp.sqrt(),
            "sqrt_one_minus_acp": (1 - acp).sqrt(),
            "post_coef_x0": betas * acp_prev.sqrt() / (1 - acp),
            "post_coef_xt": (1 - acp_prev) * (1 - betas).sqrt() / (1 - acp),
            "post_var": post_var,
            "post_logvar": post_logvar,
            "model_logvar": logvar,
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

    # forward process
    def q_mean_variance(self, x0: torch.Tensor, t: torch.Tensor):
        """Mean and variance of q(x_t | x_0)."""
        return self._at(self.sqrt_acp, t, x0) * x0, self._at(1 - self.alphas_cumprod, t, x0)

    def q_sample(self, x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        return (
            self._at(self.sqrt_acp, t, x0) * x0 + self._at(self.sqrt_one_minus_acp, t, x0) * noise
        )

    def q_posterior(self, x0: torch.Tensor, xt: torch.Tensor, t: torch.Tensor):
        """Mean and log variance of q(x_{t-1} | x_t, x_0)."""
        mean = self._at(self.post_coef_x0, t, xt) * x0 + self._at(self.post_coef_xt, t, xt) * xt
        return mean, self._at(self.post_logvar, t, xt)

    # reverse process
    def grid_logits(self, out: torch.Tensor, xt: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """(B, C, K, H, W) logits of x0's level: the network's K logits per pixel plus the exact
        log-likelihood of x_t under each level, log N(x_t; sqrt(acp) c_k, 1 - acp).

        With a flat network output this is the Bayes posterior of x0 for independent uniform
        levels; at small noise the likelihood term snaps x0 onto the grid, which the bound's
        small-t terms need, and at large noise the network's logits carry the image prior."""
        k = self.num_levels
        levels = torch.linspace(-1, 1, k, device=xt.device, dtype=xt.dtype)
        a, s = self._at(self.sqrt_acp, t, xt), self._at(self.sqrt_one_minus_acp, t, xt)
        b, c = xt.shape[:2]
        out = out.view(b, c, k, *xt.shape[2:])
        shape = (1, 1, k) + (1,) * (xt.dim() - 2)
        diff = xt.unsqueeze(2) - a.unsqueeze(2) * levels.view(shape)
        return out - 0.5 * diff**2 / (s**2).unsqueeze(2)

    def predict(
        self, model, xt: torch.Tensor, t: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(x0, eps) predicted by the network; x0 clipped to [-1, 1] when clip_denoised.

        "grid": x0 is the mean of the level posterior `grid_logits` (inside [-1, 1])."""
        out = model(xt, t)
        a, s = self._at(self.sqrt_acp, t, xt), self._at(self.sqrt_one_minus_acp, t, xt)
        if self.prediction == "grid":
            probs = torch.softmax(self.grid_logits(out, xt, t), 2)
            levels = torch.linspace(-1, 1, self.num_levels, device=xt.device, dtype=xt.dtype)
            shape = (1, 1, -1) + (1,) * (xt.dim() - 2)
            x0 = (probs * levels.view(shape)).sum(2)
        else:
            x0 = (xt - s * out) / a if self.prediction == "eps" else a * xt - s * out
        if self.clip_denoised:
            x0 = x0.clamp(-1, 1)
        return x0, (xt - a * x0) / s  # eps consistent with the (clipped) x0

    def p_mean_variance(self, model, xt: torch.Tensor, t: torch.Tensor):
        """Mean, log variance of p(x_{t-1} | x_t), and the predicted x0."""
        x0, _ = self.predict(model, xt, t)
        mean, _ = self.q_posterior(x0, xt, t)
        return mean, self._at(self.model_logvar, t, xt), x0

    # losses and the bound
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
        model,
        x0: torch.Tensor,
        t: torch.Tensor,
        noise: torch.Tensor,
        x_data: torch.Tensor | None = None,
        ce_weight: float = 0.0,
    ) -> torch.Tensor:
        """Ho et al.'s L_simple: per-example mean squared error of the eps (or v) prediction.

        "grid": the squared error of the eps implied by the x0 posterior mean, plus
        `ce_weight` times the mean cross-entropy of x0's level (x_data, long) per pixel."""
        xt = self.q_sample(x0, t, noise)
        if self.prediction == "grid":
            out = model(xt, t)
            a, s = self._at(self.sqrt_acp, t, xt), self._at(self.sqrt_one_minus_acp, t, xt)
            logits = self.grid_logits(out, xt, t)
            levels = torch.linspace(-1, 1, self.num_levels, device=xt.device, dtype=xt.dtype)
            shape = (1, 1, -1) + (1,) * (xt.dim() - 2)
            x0_hat = (torch.softmax(logits, 2) * levels.view(shape)).sum(2)
            loss = (((xt - a * x0_hat) / s - noise) ** 2).flatten(1).mean(1)
            if ce_weight > 0:
                ce = nn.functional.cross_entropy(logits.transpose(1, 2), x_data, reduction="none")
                loss = loss + ce_weight * ce.flatten(1).mean(1)
            return loss
        if self.prediction == "eps":
            target = noise
        else:
            target = (
                self._at(self.sqrt_acp, t, x0) * noise
                - self._at(self.sqrt_one_minus_acp, t, x0) * x0
            )
        return ((model(xt, t) - target) ** 2).flatten(1).mean(1)

    def prior_kl(self, x0: torch.Tensor) -> torch.Tensor:
        """KL(q(x_T | x_0) || N(0, I)) per example (B,), in nats."""
        t = torch.full((len(x0),), self.num_steps - 1, device=x0.device, dtype=torch.long)
        mean, var = self.q_mean_variance(x0, t)
        return _flat_sum(normal_kl(mean, var.log(), torch.zeros_like(mean), torch.zeros_like(mean)))

    def vb_term(
        self,
        model,
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
            dec = -_flat_sum(gaussian_log_likelihood(x0, mean, logvar))
        else:
            dec = -_flat_sum(
                discretized_gaussian_log_likelihood(x_data, mean, 0.5 * logvar, num_levels)
            )
        return torch.where(t == 0, dec, kl)

    def bound_terms(
        self,
        model,
        x0: torch.Tensor,
        num_levels: int | None = None,
        x_data: torch.Tensor | None = None,
        t_samples: int | None = None,
    ) -> dict[str, torch.Tensor]:
        """The bound's pieces: prior (B,), terms (B, M) at steps `t` (B, M), their weights (M,).

        t_samples=None: every step, weights 1 (the exact sum). t_samples=M: one uniform step per
        stratum of T/M steps, weighted by the stratum's size (an unbiased estimate of the sum).
        total (B,) = prior + terms @ weights.
        """
        b, n = len(x0), self.num_steps
        if t_samples is None or t_samples >= n:
            steps = torch.arange(n, device=x0.device).expand(b, n)
            weights = torch.ones(n, device=x0.device)
        else:
            edges = torch.linspace(0, n, t_samples + 1, device=x0.device).long()
            sizes = edges[1:] - edges[:-1]
            steps = edges[:-1] + (torch.rand(b, t_samples, device=x0.device) * sizes).long()
            weights = sizes.float()
        terms = torch.stack(
            [
                self.vb_term(model, x0, steps[:, j], num_levels, x_data)
                for j in range(steps.shape[1])
            ],
            1,
        )
        prior = self.prior_kl(x0)
        return {
            "prior": prior,
            "terms": terms,
            "t": steps,
            "weights": weights,
            "total": prior + terms @ weights,
        }

    # samplers
    def ddpm_sample(self, model, shape, generator=None, device=None) -> torch.Tensor:
        """Ancestral sampling over all T steps; returns the final mean (no noise at t=0)."""
        x = torch.randn(shape, generator=generator, device=device)
        for i in reversed(range(self.num_steps)):
            t = torch.full((shape[0],), i, device=device, dtype=torch.long)
            mean, logvar, _ = self.p_mean_variance(model, x, t)
            noise = torch.randn(shape, generator=generator, device=device)
            x = mean + (i > 0) * torch.exp(0.5 * logvar) * noise
        return x

    def ddim_steps(self, num_sampling_steps: int) -> list[int]:
        """S evenly spaced steps of 0..T-1, always including 0 and T-1."""
        s = min(num_sampling_steps, self.num_steps)
        return sorted({round(v) for v in torch.linspace(0, self.num_steps - 1, s).tolist()})

    def ddim_sample(
        self, model, shape, num_sampling_steps: int, eta: float = 0.0, generator=None, device=None
    ):
        """DDIM (Song et al., 2021) over S <= T steps; eta=1 with S=T is ancestral sampling."""
        steps = self.ddim_steps(num_sampling_steps)
        x = torch.randn(shape, generator=generator, device=device)
        for j in reversed(range(len(steps))):
            t = torch.full((shape[0],), steps[j], device=device, dtype=torch.long)
            x0, eps = self.predict(model, x, t)
            acp = self.alphas_cumprod[steps[j]]
            acp_prev = self.alphas_cumprod[steps[j - 1]] if j > 0 else torch.ones_like(acp)
            sigma = eta * torch.sqrt((1 - acp_prev) / (1 - acp) * (1 - acp / acp_prev))
            noise = torch.randn(shape, generator=generator, device=device)
            x = (
                acp_prev.sqrt() * x0
                + torch.sqrt((1 - acp_prev - sigma**2).clamp(min=0)) * eps
                + sigma * noise
            )
        return x


# --- the family -------------------------------------------------------------------------------
class Diffusion(GenerativeModule):
    family = "diffusion"
    nll_kind = "bound"

    def __init__(
        self,
        spec: DataSpec | dict,
        num_steps: int = 1000,
        schedule: str = "linear",
        prediction: str = "eps",
        variance: str = "beta_tilde",
        sampler: str = "ddpm",
        sampling_steps: int | None = None,
        eta: float = 0.0,
        t_sampling: str = "uniform",
        ce_weight: float = 0.0,
        nll_t_samples: int | None = None,
        val_t_samples: int = 16,
        channels: int = 64,
        channel_mult: tuple[int, ...] = (1, 2),
        num_res_blocks: int = 2,
        attention_resolutions: tuple[int, ...] = (4,),
        num_heads: int = 4,
        dropout: float = 0.1,
        points_hidden: int = 256,
        points_blocks: int = 3,
        lr: float = 2e-4,
        weight_decay: float = 0.0,
        warmup_steps: int = 0,
    ):
        super().__init__(spec)
        if sampler not in ("ddpm", "ddim"):
            raise ValueError(f"sampler={sampler!r}; valid: 'ddpm', 'ddim'")
        s = self.spec
        if prediction == "grid" and not s.is_image:
            prediction = "eps"  # no levels to snap to: continuous data use eps-prediction
        self.diffusion = GaussianDiffusion(
            num_steps,
            schedule,
            prediction,
            variance,
            clip_denoised=s.is_image,
            num_levels=s.num_levels if s.is_image else None,
        )
        if s.is_image:
            c, h, _ = s.shape
            self.net = UNet(
                c,
                h,
                channels=channels,
                channel_mult=tuple(channel_mult),
                num_res_blocks=num_res_blocks,
                attention_resolutions=tuple(attention_resolutions),
                dropout=dropout,
                num_heads=num_heads,
                out_channels=c * s.num_levels if prediction == "grid" else c,
            )
        else:
            self.net = TimeMLP(s.num_dims, points_hidden, points_blocks, dropout=0.0)

    # --- the bound --------------------------------------------------------------------------
    def bound_terms(self, batch, t_samples: int | None = None) -> dict[str, torch.Tensor]:
        """GaussianDiffusion.bound_terms of a batch with the evaluation network, in nats."""
        x = self.data(batch)
        levels = self.spec.num_levels if self.spec.is_image else None
        return self.diffusion.bound_terms(self.net, self.to_unit(x), levels, x, t_samples)

    def nll(self, batch) -> torch.Tensor:
        return self.bound_terms(batch, self.hparams.nll_t_samples)["total"]

    def validation_nll(self, batch) -> torch.Tensor:
        return self.bound_terms(batch, self.hparams.val_t_samples)["total"]

    # --- sampling ---------------------------------------------------------------------------
    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        shape = (n, *self.spec.shape)
        hp = self.hparams
        if hp.sampler == "ddpm":
            x = self.diffusion.ddpm_sample(self.net, shape, generator, self.device)
        else:
            steps = hp.sampling_steps or hp.num_steps
            x = self.diffusion.ddim_sample(self.net, shape, steps, hp.eta, generator, self.device)
        if not self.spec.is_image:
            return x
        k = self.spec.num_levels
        return ((x.clamp(-1, 1) + 1) / 2 * (k - 1)).round().long()

    def sampling_cost(self) -> dict:
        hp = self.hparams
        if hp.sampler == "ddpm":
            return {"nfe": hp.num_steps, "sampler": "ddpm"}
        return {
            "nfe": len(self.diffusion.ddim_steps(hp.sampling_steps or hp.num_steps)),
            "sampler": "ddim",
            "eta": hp.eta,
        }

    # --- training ---------------------------------------------------------------------------
    def training_step(self, batch, batch_idx: int) -> torch.Tensor:
        x = self.data(batch)
        x0 = self.to_unit(x)
        t = self.diffusion.sample_steps(len(x0), self.hparams.t_sampling, self.device)
        loss = self.diffusion.training_loss(
            self.net, x0, t, torch.randn_like(x0), x, self.hparams.ce_weight
        ).mean()
        self.log("train/loss", loss, batch_size=len(x0))
        return loss

    def configure_optimizers(self):
        hp = self.hparams
        opt = torch.optim.Adam(self.net.parameters(), lr=hp.lr, weight_decay=hp.weight_decay)
        if hp.warmup_steps <= 0:
            return opt
        sched = torch.optim.lr_scheduler.LambdaLR(
            opt, lambda s: min(1.0, (s + 1) / hp.warmup_steps)
        )
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}
