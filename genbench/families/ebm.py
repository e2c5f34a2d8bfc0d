"""Energy-based models on a compact box, trained by contrastive divergence (Du & Mordatch 2019).

Points: p(y) = exp(-E(y)) / Z on the data's box widened by `points_margin`; log Z by quadrature.
Images: p(y) = q(y) exp(-E(y)) / Z_E on the dequantised cube [-1, 1]^D, q the per-pixel
histogram of the training split; E starts at zero, so an untrained model is exactly q. Chains run
in q's uniform coordinates v, y = q^-1((v + 1) / 2). q is constant on each level's bin, so
    -log P(x) = -log q(x) - log E_u[exp(-E(y(x, u)))] + log Z_E.
The middle term is estimated from S dequantisation draws as -log mean_s exp(-E(y_s)): by Jensen
it is high in expectation, less so as S grows. log Z_E comes from residual AIS at increasing
lengths on the same chains (nll_diagnostics' ladder), each length run `ais_repeats` times,
lengthened until log Z moves by less than the repetitions' spread (or ais_temps ends): low in
expectation, less so as the schedule grows. The NLL mixes an upward and a downward bias, so it is
an "estimate" with no direction claimed; nll_diagnostics measures both (the change from S/2 to S
draws, the last doubling of the ladder). Validation selects with this same estimator; log Z is
estimated once per pass (begin_nll_pass), from one seed on every device. Negatives: SGLD from a
replay buffer (a plain attribute: the EMA needs fixed-shape buffers); loss E(x+) - E(x-) + alpha
(E(x+)^2 + E(x-)^2). The buffer and the training noise's own generator travel in checkpoints.
"""

from __future__ import annotations

import math

import torch

from genbench.core.spec import DataSpec
from genbench.estimators.ais import ais_ladder, ladder_summary
from genbench.estimators.importance import DrawTally, dequantisation_summary
from genbench.estimators.per_pass import PerPass
from genbench.estimators.quadrature import refined_grid_log_z
from genbench.families.base import GenerativeModule
from genbench.maths.histogram import HistogramBase, dequantize, level_counts
from genbench.nets.energy import ConvEnergy, MLPEnergy
from genbench.samplers.base import run
from genbench.samplers.langevin import SGLD, energy_grad
from genbench.samplers.replay import ReplayBuffer


class EBM(GenerativeModule):
    family = "ebm"
    nll_kind = "estimate"

    def __init__(
        self,
        spec: DataSpec | dict,
        hidden: int,
        points_hidden: int,
        sgld_steps: int,
        sgld_step_size: float,
        sample_steps: int,
        buffer_size: int,
        reinit_prob: float,
        alpha: float,
        optimizer: dict,
        grad_clip: float,
        points_margin: float,
        quadrature_n: int,
        quadrature_tol: float,
        ais_chains: int,
        ais_temps: list[int],
        ais_repeats: int,
        ais_pilot_chains: int,
        nll_dequant_samples: int,
    ):
        ais_temps = [int(t) for t in ais_temps]  # not a ListConfig: weights_only loads work
        super().__init__(spec)  # saves the constructor's arguments as hparams
        self.automatic_optimization = False
        s = self.spec
        if s.is_image:
            # The residual energy: zero at init, so the model starts exactly at the base.
            self.energy = ConvEnergy(
                s.shape[0], s.shape[1], hidden, spectral_norm=False, zero_init=True
            )
            # Per-pixel level counts of the training split (+1 smoothing): the base q.
            self.register_buffer("level_counts", torch.ones(s.num_dims, s.num_levels))
        else:
            self.energy = MLPEnergy(s.num_dims, points_hidden, 3, spectral_norm=False)
        # The support's corners: the cube (images); the data's box, +-inf until data is seen.
        self.register_buffer("data_lo", torch.full((s.num_dims,), -1.0 if s.is_image else math.inf))
        self.register_buffer("data_hi", -self.data_lo)
        self.replay = ReplayBuffer(buffer_size, reinit_prob)  # negatives' chains, noise's RNG
        self.sample_steps = sample_steps
        self.diverged_reason: str | None = None
        self._log_z = PerPass()  # log Z for the weights and this NLL pass's seed
        self._tally = DrawTally(nll_dequant_samples)

    def box(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The support (D,), (D,): [-1, 1]^D for images, the widened data box for points."""
        lo, hi = self.data_lo, self.data_hi
        if not torch.isfinite(lo).all():  # untrained points: a box around the usual toy data
            lo, hi = torch.full_like(lo, -4.0), torch.full_like(hi, 4.0)
        m = 0.0 if self.spec.is_image else self.hparams.points_margin * (hi - lo)
        return lo - m, hi + m

    def noise_like(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """n uniform draws (n, D) over the support: exact base draws in chain coordinates."""
        lo, hi = self.box()
        u = torch.rand(n, self.spec.num_dims, generator=generator, device=self.device)
        return lo + u * (hi - lo)

    def flat_energy(self, y: torch.Tensor) -> torch.Tensor:
        """E on flat (N, D) data-space inputs -> (N,) (images: the residual energy)."""
        return self.energy(y.view(-1, *self.spec.shape))

    def base(self) -> HistogramBase:
        """Images: the per-pixel histogram base q of the dequantised training data."""
        return HistogramBase(self.level_counts / self.level_counts.sum(1, keepdim=True))

    def to_data(self, v: torch.Tensor) -> torch.Tensor:
        """Chain coordinates (N, D) -> data space: images q^-1((v + 1) / 2); points v."""
        return self.base().icdf((v + 1) / 2) if self.spec.is_image else v

    def langevin(self, v: torch.Tensor, steps: int, generator=None) -> torch.Tensor:
        """`steps` SGLD steps on chain states v (N, D), reflected at the faces of the box."""
        sampler = SGLD(self.hparams.sgld_step_size, None, *self.box())  # Langevin noise
        sampler.set_timesteps(steps)
        return run(sampler, energy_grad(lambda u: self.flat_energy(self.to_data(u))), v, generator)

    def on_fit_start(self) -> None:
        """Images: fit q on the whole training split (deterministic: a resume refits the same).
        The training generator is made here, before a resumed run restores the global RNG: a
        resumed run leaves the global stream as an uninterrupted one does."""
        if self.spec.is_image:
            self.fit_base(self.trainer.datamodule.split("train")[0])
        self.replay.generator(self.device)

    def fit_base(self, x: torch.Tensor) -> None:
        """Images: q = per-pixel level frequencies of x (N, C, H, W) long, +1 smoothing."""
        counts = 1.0 + level_counts(x.to(self.device), self.spec.num_levels).float()
        if not torch.equal(counts, self.level_counts):
            self.level_counts = counts
            self.replay.clear()  # chain coordinates depend on q

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        with torch.inference_mode(False), torch.enable_grad():
            v = self.langevin(self.noise_like(n, generator), self.sample_steps, generator)
        return self.chain_images(v)

    def chain_images(self, v: torch.Tensor) -> torch.Tensor:
        """Chain states (N, D) as samples: images long (N, C, H, W), points (N, D)."""
        y, k = self.to_data(v).detach(), self.spec.num_levels
        if not self.spec.is_image:
            return y
        return ((y + 1) / 2 * k).floor().long().clamp(0, k - 1).view(len(v), *self.spec.shape)

    def sampling_cost(self) -> dict:
        start, n = "base" if self.spec.is_image else "uniform", self.sample_steps
        return {"nfe": SGLD.evals_per_call * n, "sampler": f"SGLD-{n} from {start}"}

    def configure_sampler(self, sampler: str, steps: int) -> None:
        if sampler != "sgld" or steps < 1:
            raise ValueError(f"ebm: sampler={sampler!r} steps={steps}; valid: 'sgld', steps >= 1")
        self.sample_steps = steps

    def begin_nll_pass(self, seed: int) -> None:
        """One pass of nll over a split: log Z from `seed` (the same on every device), and the
        dequantisation tally restarted."""
        self._log_z.begin(seed)
        self._tally = DrawTally(self.hparams.nll_dequant_samples)

    def log_z(self) -> dict:
        """{'log_z', 'stderr', ...} for the weights and this pass's seed (estimators/per_pass)."""
        return self._log_z.get(self, self._compute_log_z)

    def _compute_log_z(self, seed: int) -> dict:
        hp = self.hparams
        if not self.spec.is_image:  # stderr: the quadrature's last change
            lo, hi = (b.double() for b in self.box())
            with torch.no_grad():
                z = refined_grid_log_z(self.flat_energy, lo, hi, hp.quadrature_n, hp.quadrature_tol)
            return {"log_z": z[0], "stderr": z[1]}
        z = ais_ladder(
            self.flat_energy,
            self.base(),
            hp.ais_chains,
            [int(t) for t in hp.ais_temps],
            hp.ais_pilot_chains,
            seed,
            hp.ais_repeats,
        )
        return {"log_z": z[-1]["log_z"], "stderr": z[-1]["log_z_stderr"], "ladder": z}

    def shared_nll_stderr_nats(self) -> float:
        return self.log_z()["stderr"]

    def nll(self, batch) -> torch.Tensor:
        """Per-example NLL estimate (B,) in nats; dequantisation draws from the global RNG."""
        x, est = self.data(batch), self.log_z()
        if not self.spec.is_image:  # infinite NLL outside the support
            y, (lo, hi) = x.float().flatten(1), self.box()
            nats = self.flat_energy(y) + est["log_z"]
            return nats.masked_fill(~((y >= lo) & (y <= hi)).all(1), math.inf)
        k = self.spec.num_levels
        draws = self._tally.counts[-1]
        neg_e = torch.stack([-self.flat_energy(dequantize(x, k)) for _ in range(draws)])
        # -log q(y) - D log(2/K) is the base's discrete NLL (q is constant on each bin).
        nats = self._tally.add(neg_e, self.base().level_nll(x.flatten(1)))
        return nats + est["log_z"]

    def nll_estimator(self) -> dict:
        hp = self.hparams
        if not self.spec.is_image:
            return {"name": "quadrature", "cells": hp.quadrature_n, "tol": hp.quadrature_tol}
        ais = {k: hp[k] for k in ("ais_chains", "ais_repeats", "ais_temps", "ais_pilot_chains")}
        name = "AIS + dequantisation importance estimate"
        return {"name": name, **ais, "dequantisation_draws": hp.nll_dequant_samples}

    def nll_diagnostics(self) -> dict:
        """The AIS ladder and the dequantisation draws behind the last pass (images, after nll()
        has scored examples): each bias measured by how far its last doubling moved the NLL."""
        est, means = self._log_z.current(self), self._tally.means()
        if est is None or not means:
            return {}
        out = ladder_summary(est["ladder"], means[self._tally.counts[-1]], self.spec.num_dims)
        return {**out, **dequantisation_summary(means, est["log_z"], self.spec.num_dims)}

    def training_step(self, batch, batch_idx: int) -> torch.Tensor:
        hp, x, rng = self.hparams, self.data(batch), self.replay.generator(self.device)
        if self.spec.is_image:
            y_pos = dequantize(x, self.spec.num_levels, rng)
        else:
            y_pos = x.float().flatten(1)
            self.data_lo = torch.minimum(self.data_lo, y_pos.min(0).values)
            self.data_hi = torch.maximum(self.data_hi, y_pos.max(0).values)
        idx, v_neg = self.replay.draw(len(x), self.noise_like, self.device)
        v_neg = self.langevin(v_neg, hp.sgld_steps, rng)
        self.replay.write(idx, v_neg)
        e_pos, e_neg = self.flat_energy(y_pos), self.flat_energy(self.to_data(v_neg))
        loss = e_pos.mean() - e_neg.mean() + hp.alpha * (e_pos**2 + e_neg**2).mean()
        if not (torch.isfinite(e_pos).all() and torch.isfinite(e_neg).all()):
            self.diverged_reason = f"non-finite energy at step {self.global_step}"
            return loss.detach()
        opt = self.optimizers()
        opt.zero_grad(set_to_none=True)
        self.manual_backward(loss)
        grad_norm = torch.nn.utils.clip_grad_norm_(self.energy.parameters(), hp.grad_clip)
        if not torch.isfinite(grad_norm):
            self.diverged_reason = f"non-finite energy gradient at step {self.global_step}"
            return loss.detach()
        opt.step()
        logs = {"loss": loss, "e_pos": e_pos.mean(), "e_neg": e_neg.mean(), "grad_norm": grad_norm}
        self.log_dict({f"train/{k}": v.detach() for k, v in logs.items()}, batch_size=len(x))
        return loss.detach()

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        super().on_save_checkpoint(checkpoint)
        checkpoint["ebm"] = self.replay.state_dict()

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        super().on_load_checkpoint(checkpoint)
        self.replay.load_state_dict(checkpoint.get("ebm", {}))
