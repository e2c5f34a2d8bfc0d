"""Generative adversarial network: DCGAN for images, MLPs for points; no likelihood.

Losses: non-saturating (Goodfellow et al., 2014), hinge (Miyato et al., 2018) and WGAN-GP
(Gulrajani et al., 2017). Training uses manual optimisation with `d_steps` discriminator
updates per generator update. Samples come from the generator's weights as the run leaves them
(the run's EMA callback averages them, as for every family).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from genbench.core.spec import DataSpec
from genbench.families.base import GenerativeModule
from genbench.maths.distributions import unit_to_levels
from genbench.nets.dcgan import DCGANDiscriminator, DCGANGenerator, MLPDiscriminator
from genbench.nets.mlp import mlp

LOSSES = ("nonsaturating", "hinge", "wgan_gp")


def gradient_penalty(
    critic, real: torch.Tensor, fake: torch.Tensor, eps: torch.Tensor | None = None
) -> torch.Tensor:
    """WGAN-GP: mean over the batch of (||grad_x critic(x_hat)||_2 - 1)^2 on interpolates.

    The critic sees a view of the interpolates, not the leaf itself: the same gradient, and
    PyTorch's FLOP counter (the budget's probe) can follow autograd.grad through it."""
    if eps is None:
        eps = torch.rand(len(real), *[1] * (real.dim() - 1), device=real.device)
    x_hat = (eps * real + (1 - eps) * fake).requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(x_hat.view_as(x_hat)).sum(), x_hat, create_graph=True)
    return ((grad.flatten(1).norm(dim=1) - 1) ** 2).mean()


def d_loss_fn(loss: str, d_real: torch.Tensor, d_fake: torch.Tensor) -> torch.Tensor:
    if loss == "nonsaturating":
        return F.softplus(-d_real).mean() + F.softplus(d_fake).mean()
    if loss == "hinge":
        return F.relu(1 - d_real).mean() + F.relu(1 + d_fake).mean()
    return d_fake.mean() - d_real.mean()  # wgan_gp; the penalty is added by the caller


def g_loss_fn(loss: str, d_fake: torch.Tensor) -> torch.Tensor:
    if loss == "nonsaturating":
        return F.softplus(-d_fake).mean()
    return -d_fake.mean()


class GAN(GenerativeModule):
    family = "gan"
    nll_kind = "none"
    checkpoint_monitor = "val/fid"  # logged by genbench.evaluation.validation.ValidationFID

    def __init__(
        self,
        spec: DataSpec | dict,
        loss: str,
        latent_dim: int,
        hidden: int,
        points_latent_dim: int,
        points_hidden: int,
        spectral_norm: bool,
        d_steps: int,
        gp_weight: float,
        lr_g: float,
        lr_d: float,
        betas: tuple[float, float],
        real_noise: bool,
    ):
        super().__init__(spec)
        if loss not in LOSSES:
            raise ValueError(f"loss={loss!r}; valid: {LOSSES}")
        if d_steps < 1:
            raise ValueError(f"d_steps={d_steps} must be >= 1")
        self.automatic_optimization = False
        s = self.spec
        if s.is_image:
            c, h, _ = s.shape
            self.latent_dim = latent_dim
            self.generator = DCGANGenerator(latent_dim, c, h, hidden)
            self.discriminator = DCGANDiscriminator(c, h, hidden, spectral_norm)
        else:
            self.latent_dim = points_latent_dim
            # Three hidden layers each, as in every recorded run (no YAML key: one would change
            # every GAN run's config hash).
            self.generator = mlp(points_latent_dim, s.num_dims, points_hidden, layers=3)
            self.discriminator = MLPDiscriminator(s.num_dims, points_hidden, 3, spectral_norm)
        self._d_updates = 0

    # --- GenerativeModule -----------------------------------------------------------
    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        z = torch.randn(n, self.latent_dim, generator=generator, device=self.device)
        was_training = self.generator.training
        self.generator.eval()  # batch norm from running statistics
        y = self.generator(z)
        self.generator.train(was_training)
        if not self.spec.is_image:
            return y
        return unit_to_levels(y, self.spec.num_levels)

    def sampling_cost(self) -> dict:
        return {"nfe": 1, "sampler": "generator"}

    def latent_draw(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """n prior draws z (n, latent_dim): the latent `sample` decodes."""
        return torch.randn(n, self.latent_dim, generator=generator, device=self.device)

    @torch.no_grad()
    def decode_latent(self, z: torch.Tensor) -> torch.Tensor:
        """Images: the generator's image of each z before rounding, (n, C, H, W) in [0, 1]."""
        was_training = self.generator.training
        self.generator.eval()
        y = self.generator(z)
        self.generator.train(was_training)
        return (y + 1) / 2

    # --- training -------------------------------------------------------------------
    def real_input(self, x: torch.Tensor) -> torch.Tensor:
        """Data as D sees it: [-1, 1] images (+ optional uniform noise of one bin), or points."""
        y = self.to_unit(x)
        if self.spec.is_image and self.hparams.real_noise:
            y = y + (torch.rand_like(y) - 0.5) * (2 / (self.spec.num_levels - 1))
        return y

    def training_step(self, batch, batch_idx: int) -> torch.Tensor:
        opt_g, opt_d = self.optimizers()
        loss = self.hparams.loss
        real = self.real_input(self.data(batch))
        z = torch.randn(len(real), self.latent_dim, device=self.device)

        fake = self.generator(z).detach()
        d_real, d_fake = self.discriminator(real), self.discriminator(fake)
        d_loss = d_loss_fn(loss, d_real, d_fake)
        logs = {"train/d_loss": d_loss.detach()}
        if loss == "wgan_gp":
            gp = gradient_penalty(self.discriminator, real, fake)
            d_loss = d_loss + self.hparams.gp_weight * gp
            logs["train/gp"] = gp.detach()
        opt_d.zero_grad(set_to_none=True)
        self.manual_backward(d_loss)
        opt_d.step()
        self._d_updates += 1

        if self._d_updates % self.hparams.d_steps == 0:
            z = torch.randn(len(real), self.latent_dim, device=self.device)
            g_loss = g_loss_fn(loss, self.discriminator(self.generator(z)))
            opt_g.zero_grad(set_to_none=True)
            self.manual_backward(g_loss)
            opt_g.step()
            logs["train/g_loss"] = g_loss.detach()
        logs["train/loss"] = d_loss.detach()  # the common panel name: D's objective
        self.log_dict(logs, batch_size=len(real))
        return d_loss.detach()

    @property
    def training_cycle(self) -> int:
        """Batches after which the training step repeats: d_steps (one generator step each)."""
        return self.hparams.d_steps

    # The D/G alternation counter travels in checkpoints (exact resume with d_steps > 1).
    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["gan_d_updates"] = self._d_updates

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        self._d_updates = int(checkpoint.get("gan_d_updates", 0))

    def configure_optimizers(self):
        betas = tuple(self.hparams.betas)
        adam = {"_target_": "torch.optim.Adam", "betas": betas}
        opt_g = self.make_optimizer({**adam, "lr": self.hparams.lr_g}, self.generator.parameters())
        opt_d = self.make_optimizer(
            {**adam, "lr": self.hparams.lr_d}, self.discriminator.parameters()
        )
        return opt_g, opt_d
