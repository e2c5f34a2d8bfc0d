"""Energy-based models on a compact box, trained by contrastive divergence.

Points: p(y) = exp(-E(y)) / Z on the training data's bounding box widened by `points_margin`
of its range on each side; log Z by midpoint quadrature on a grid (refined until two
resolutions agree to `quadrature_tol`).

Images: a residual EBM p(y) = q(y) exp(-E(y)) / Z_E on the dequantised cube [-1, 1]^D (bin k of
K is [2k/K - 1, 2(k+1)/K - 1)), where q is the per-pixel histogram of the training split
(normalised, fitted before the first step) and Z_E = E_q[exp(-E)]. The last layer of E starts
at zero, so an untrained model is exactly q. Chains (SGLD negatives, sample(), AIS) run in q's
uniform coordinates v in [-1, 1]^D, y = q^-1((v + 1) / 2) per pixel: uniform v are exact
draws from q, and the target there is exp(-E(y(v))). NLL(x) is the dequantisation bound
-log q_discrete(x) + E_u[E(y(x, u))] + log Z_E, with log Z_E from annealed importance sampling
along exp(-b E) (a pilot run tunes the MALA step per temperature) and its standard error (delta
method on the importance weights), which evaluation adds to nll_bpd_stderr. AIS
under-estimates log Z when it has not converged (the NLL is then too low): tests/ and the
report compare longer schedules. log Z is cached and invalidated by every training step.

Training (IGEBM / JEM style, Du & Mordatch 2019; Grathwohl et al. 2020): negatives from SGLD
chains started from a replay buffer (a fraction `reinit_prob` restarted from the base / uniform
noise), reflected at the faces of the box; loss E(x+) - E(x-) + alpha (E(x+)^2 + E(x-)^2)
(alpha keeps the energy small, which is also what keeps AIS accurate), gradient clipping.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from genbench.core.spec import DataSpec
from genbench.families.base import GenerativeModule
from genbench.nets.energy import ConvEnergy, MLPEnergy

EnergyFn = Callable[[torch.Tensor], torch.Tensor]


def _grad(energy_fn: EnergyFn, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(E(y), dE/dy) for a batch y, without touching parameter gradients."""
    y = y.detach().requires_grad_(True)
    e = energy_fn(y)
    (g,) = torch.autograd.grad(e.sum(), y)
    return e.detach(), g


def sgld(
    energy_fn: EnergyFn,
    y: torch.Tensor,
    steps: int,
    step_size: float,
    noise: float | None = None,
    lo: torch.Tensor | float | None = None,
    hi: torch.Tensor | float | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """`steps` of y <- y - step_size dE/dy + noise N(0, I), reflected into [lo, hi] if given.

    noise=None is Langevin dynamics for exp(-E): noise = sqrt(2 step_size). Reflection (not
    clamping, which piles mass on the faces) keeps the uniform density invariant when E = 0.
    """
    noise = math.sqrt(2 * step_size) if noise is None else noise
    for _ in range(steps):
        _, g = _grad(energy_fn, y)
        eps = torch.randn(y.shape, generator=generator, device=y.device, dtype=y.dtype)
        y = y.detach() - step_size * g + noise * eps
        if lo is not None:
            y = reflect(
                y, torch.as_tensor(lo, device=y.device), torch.as_tensor(hi, device=y.device)
            )
    return y.detach()


def reflect(y: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor) -> torch.Tensor:
    """Fold y back into [lo, hi] by reflection at the faces (any number of times)."""
    w = hi - lo
    z = torch.remainder(y - lo, 2 * w)
    return lo + torch.where(z > w, 2 * w - z, z)


def grid_log_z(
    energy_fn: EnergyFn,
    lo: torch.Tensor,
    hi: torch.Tensor,
    n: int,
    chunk: int = 65536,
) -> float:
    """log of the integral of exp(-E) over the box [lo, hi] (D,) by the midpoint rule, n^D cells."""
    axes = [
        lo[d] + (torch.arange(n, device=lo.device, dtype=torch.float64) + 0.5) * (hi[d] - lo[d]) / n
        for d in range(len(lo))
    ]
    grid = torch.cartesian_prod(*axes).view(-1, len(lo))
    neg_e = torch.cat([-energy_fn(g.float()).double() for g in grid.split(chunk)])
    log_cell = torch.log(hi - lo).double().sum() - len(lo) * math.log(n)
    return float(torch.logsumexp(neg_e, 0) + log_cell)


def refined_grid_log_z(
    energy_fn: EnergyFn,
    lo: torch.Tensor,
    hi: torch.Tensor,
    n: int = 256,
    tol: float = 0.01,
    max_n: int = 1024,
) -> tuple[float, float]:
    """(log Z, |change from the last halving of the cell size|): doubles n until change < tol."""
    prev = grid_log_z(energy_fn, lo, hi, n)
    while True:
        n *= 2
        cur = grid_log_z(energy_fn, lo, hi, n)
        if abs(cur - prev) < tol or n >= max_n:
            return cur, abs(cur - prev)
        prev = cur


class HistogramBase:
    """Per-dimension piecewise-constant density on [-1, 1]^D with K equal bins (a normalised
    continuous density: the dequantised per-pixel marginals of the training data)."""

    def __init__(self, probs: torch.Tensor):
        self.probs = probs  # (D, K), rows sum to 1
        self.num_levels = probs.shape[1]
        self.log_density = torch.log(probs) + math.log(self.num_levels / 2)  # per unit length

    def log_prob(self, y: torch.Tensor) -> torch.Tensor:
        """y (N, D) in [-1, 1] -> (N,) log density."""
        k = ((y + 1) / 2 * self.num_levels).floor().long().clamp(0, self.num_levels - 1)
        return self.log_density.gather(1, k.T).sum(0)

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        d, k = self.probs.shape
        idx = torch.multinomial(self.probs, n, replacement=True, generator=generator).T  # (n, D)
        u = torch.rand(n, d, generator=generator, device=self.probs.device)
        return (idx + u) * (2 / k) - 1

    def icdf(self, u: torch.Tensor) -> torch.Tensor:
        """Per-dimension inverse CDF, (N, D) in [0, 1] -> (N, D) in [-1, 1]; differentiable in u.

        Piecewise linear and monotone: uniform u gives exact draws from this density, and the
        push-forward of exp(-E(icdf(u))) du is base(y) exp(-E(y)) dy.
        """
        k = self.num_levels
        cdf = torch.cumsum(self.probs, 1)  # (D, K): upper edges
        ut = u.T.contiguous()
        idx = torch.searchsorted(cdf.contiguous(), ut.detach(), right=True).clamp(max=k - 1)
        lower = torch.cat([torch.zeros_like(cdf[:, :1]), cdf[:, :-1]], 1).gather(1, idx)
        frac = ((ut - lower) / self.probs.gather(1, idx)).clamp(0, 1)
        return ((idx + frac) * (2 / k) - 1).T

    def level_nll(self, x: torch.Tensor) -> torch.Tensor:
        """Discrete NLL (nats) of levels x (N, D) in [0, K) under the per-dimension probs."""
        return -torch.log(self.probs).gather(1, x.T).sum(0)


def sigmoid_schedule(num_temps: int, delta: float = 4.0) -> torch.Tensor:
    """Inverse temperatures 0 = b_0 < ... < b_T = 1, dense at both ends (Grosse et al., 2013)."""
    t = torch.sigmoid(delta * (2 * torch.linspace(0, 1, num_temps + 1, dtype=torch.float64) - 1))
    return (t - t[0]) / (t[-1] - t[0])


def ais_log_z(
    energy_fn: EnergyFn,
    base: HistogramBase,
    num_chains: int,
    num_temps: int,
    step_sizes: torch.Tensor | None = None,
    init_step_size: float = 0.05,
    target_accept: float = 0.6,
    generator: torch.Generator | None = None,
) -> dict:
    """AIS estimate of log Z = log of the integral of exp(-E) over [-1, 1]^D.

    Path: f_b = base^(1-b) exp(-b E) on the cube; one MALA move per temperature (proposals that
    leave the cube are rejected). With `step_sizes` (T,) the kernels are fixed; without, the step
    size adapts to `target_accept` and the schedule used is returned, so a pilot run can set it
    for an unbiased main run. Returns log_z, its stderr (delta method), log_w, step_sizes,
    accept_rate.
    """
    betas = sigmoid_schedule(num_temps).tolist()
    dev = base.probs.device
    y = base.sample(num_chains, generator)
    log_q = base.log_prob(y)
    e, g = _grad(energy_fn, y)
    log_w = torch.zeros(num_chains, dtype=torch.float64, device=dev)
    adapt = step_sizes is None
    used = torch.empty(num_temps, dtype=torch.float64)
    s = init_step_size
    accepted = 0.0
    for t in range(1, num_temps + 1):
        b0, b1 = betas[t - 1], betas[t]
        log_w += (b1 - b0) * (-e - log_q).double()
        if not adapt:
            s = float(step_sizes[t - 1])
        used[t - 1] = s

        # MALA: the base is piecewise constant, so the drift is -b dE/dy.
        mean_fwd = y - 0.5 * s**2 * b1 * g
        eps = torch.randn(y.shape, generator=generator, device=dev, dtype=y.dtype)
        y_new = mean_fwd + s * eps
        inside = ((y_new >= -1) & (y_new <= 1)).all(1)
        y_eval = y_new.clamp(-1, 1)
        e_new, g_new = _grad(energy_fn, y_eval)
        lq_new = base.log_prob(y_eval)
        mean_bwd = y_eval - 0.5 * s**2 * b1 * g_new
        log_fwd = -((y_new - mean_fwd) ** 2).sum(1) / (2 * s**2)
        log_bwd = -((y - mean_bwd) ** 2).sum(1) / (2 * s**2)
        log_f_new = (1 - b1) * lq_new - b1 * e_new
        log_f_old = (1 - b1) * log_q - b1 * e
        log_acc = log_f_new - log_f_old + log_bwd - log_fwd
        u = torch.rand(num_chains, generator=generator, device=dev)
        acc = inside & (torch.log(u) < log_acc) & torch.isfinite(log_acc)
        y = torch.where(acc[:, None], y_eval, y)
        e = torch.where(acc, e_new, e)
        log_q = torch.where(acc, lq_new, log_q)
        g = torch.where(acc[:, None], g_new, g)
        rate = acc.float().mean().item()
        accepted += rate
        if adapt:
            s *= 1.05 if rate > target_accept else 0.95
    log_z = torch.logsumexp(log_w, 0) - math.log(num_chains)
    w = torch.exp(log_w - log_w.max())
    rel_se = w.std() / (w.mean() * math.sqrt(num_chains))  # delta method: se(log Z_hat)
    return {
        "log_z": float(log_z),
        "stderr": float(rel_se),
        "log_w": log_w,
        "step_sizes": used,
        "accept_rate": accepted / num_temps,
    }


def residual_ais_log_z(
    energy_fn: EnergyFn,
    base: HistogramBase,
    num_chains: int,
    num_temps: int,
    step_sizes: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
) -> dict:
    """AIS estimate of log Z_E = log E_{y ~ base}[exp(-E(y))] for p(y) = base(y) exp(-E(y)) / Z_E.

    Runs `ais_log_z` in the base's uniform coordinates v in [-1, 1]^D, y = icdf((v + 1) / 2):
    there the base is uniform and the target is exp(-E(y(v))), so the path anneals exp(-b E)
    only; Z_E = (integral over v) / 2^D. Same keys as `ais_log_z`. (MALA in y itself, with q's
    jumps at bin edges in the Metropolis-Hastings ratio, gave far more spread log weights on a
    trained digits model: 17 nats standard deviation against ~1 here.)
    """
    d = base.probs.shape[0]
    uniform = HistogramBase(torch.ones(d, 1, device=base.probs.device))

    def energy_v(v: torch.Tensor) -> torch.Tensor:
        return energy_fn(base.icdf((v + 1) / 2))

    out = ais_log_z(energy_v, uniform, num_chains, num_temps, step_sizes, generator=generator)
    out["log_z"] -= d * math.log(2)
    return out


class EBM(GenerativeModule):
    family = "ebm"
    nll_kind = "estimate"

    def __init__(
        self,
        spec: DataSpec | dict,
        hidden: int = 32,
        points_hidden: int = 128,
        spectral_norm: bool = False,
        sgld_steps: int = 20,
        sgld_step_size: float = 1e-3,
        sgld_noise: float | None = None,
        points_sgld_step_size: float = 1e-3,
        points_sgld_noise: float | None = None,
        sample_steps: int = 100,
        buffer_size: int = 10000,
        reinit_prob: float = 0.05,
        alpha: float = 0.1,
        lr: float = 1e-3,
        grad_clip: float = 1.0,
        points_margin: float = 0.25,
        quadrature_n: int = 128,
        quadrature_tol: float = 0.01,
        ais_chains: int = 128,
        ais_temps: int = 1000,
        ais_pilot_chains: int = 32,
        val_ais_chains: int = 32,
        val_ais_temps: int = 200,
        ais_seed: int = 0,
        nll_dequant_samples: int = 4,
    ):
        super().__init__(spec)
        self.automatic_optimization = False
        s = self.spec
        if s.is_image:
            c, h, _ = s.shape
            # The residual energy: zero at init, so the model starts exactly at the base.
            self.energy = ConvEnergy(c, h, hidden, spectral_norm, zero_init=True)
            self.step_size, self.noise = sgld_step_size, sgld_noise
            # Per-pixel level counts of the training data (+1 smoothing): the base density q,
            # fitted on the whole training split before the first step (on_fit_start).
            self.register_buffer("level_counts", torch.ones(s.num_dims, s.num_levels))
        else:
            self.energy = MLPEnergy(s.num_dims, points_hidden, 3, spectral_norm)
            self.step_size, self.noise = points_sgld_step_size, points_sgld_noise
        # Training data's bounding box (points): defines the support; +-inf until data is seen.
        self.register_buffer("data_lo", torch.full((s.num_dims,), math.inf))
        self.register_buffer("data_hi", torch.full((s.num_dims,), -math.inf))
        # The replay buffer is a plain tensor, not a registered buffer: it changes size (and
        # the run's EMA keeps buffers in step with fixed shapes). Not checkpointed yet.
        self.replay = torch.empty(0)
        self.diverged_reason: str | None = None
        self._log_z: dict[str, dict] = {}  # "test" and "val" (cheaper AIS) estimates

    # --- support and noise ----------------------------------------------------------
    def box(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The support: [-1, 1]^D for images, the widened data box for points."""
        d = self.spec.num_dims
        if self.spec.is_image:
            return -torch.ones(d, device=self.device), torch.ones(d, device=self.device)
        lo, hi = self.data_lo, self.data_hi
        if not torch.isfinite(lo).all():  # untrained: a box around the usual toy data
            lo, hi = torch.full_like(lo, -4.0), torch.full_like(hi, 4.0)
        m = self.hparams.points_margin * (hi - lo)
        return lo - m, hi + m

    def noise_like(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """n uniform draws over the support, flat (n, D)."""
        lo, hi = self.box()
        u = torch.rand(n, self.spec.num_dims, generator=generator, device=self.device)
        return lo + u * (hi - lo)

    def flat_energy(self, y: torch.Tensor) -> torch.Tensor:
        """E on flat (N, D) data-space inputs -> (N,) (images: the residual energy E_theta)."""
        return self.energy(y.view(-1, *self.spec.shape))

    def base(self) -> HistogramBase:
        """Images: the per-pixel histogram base q of the dequantised training data."""
        return HistogramBase(self.level_counts / self.level_counts.sum(1, keepdim=True))

    def to_data(self, v: torch.Tensor) -> torch.Tensor:
        """Chain coordinates -> data space: images y = q's inverse CDF of (v + 1) / 2; points v."""
        return self.base().icdf((v + 1) / 2) if self.spec.is_image else v

    def chain_energy(self, v: torch.Tensor) -> torch.Tensor:
        """The energy SGLD follows, in chain coordinates (uniform under the base for images)."""
        return self.flat_energy(self.to_data(v))

    def on_fit_start(self) -> None:
        """Images: fit the base q on the whole training split (deterministic, so a resumed run
        refits the same counts)."""
        if not self.spec.is_image:
            return
        dm = getattr(self.trainer, "datamodule", None)
        if dm is None or not hasattr(dm, "split"):
            raise RuntimeError("the EBM's image base needs a datamodule with .split('train')")
        self.fit_base(dm.split("train")[0])

    def fit_base(self, x: torch.Tensor) -> None:
        """Images: q = per-pixel level frequencies of x (N, C, H, W) long, +1 smoothing."""
        x = x.to(self.device).flatten(1)
        counts = torch.nn.functional.one_hot(x, self.spec.num_levels).sum(0)
        self.level_counts = 1.0 + counts.float()
        self.replay = torch.empty(0, device=self.device)  # chain coordinates depend on q
        self._log_z = {}

    def dequantize(self, x: torch.Tensor) -> torch.Tensor:
        """Images long (B, ...) -> flat (B, D) uniform in their bins of [-1, 1]; points flat."""
        if not self.spec.is_image:
            return x.float().flatten(1)
        k = self.spec.num_levels
        return ((x.float() + torch.rand_like(x, dtype=torch.float)) * (2 / k) - 1).flatten(1)

    def run_sgld(self, y: torch.Tensor, steps: int, generator=None) -> torch.Tensor:
        lo, hi = self.box()
        return sgld(self.chain_energy, y, steps, self.step_size, self.noise, lo, hi, generator)

    # --- GenerativeModule -----------------------------------------------------------
    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        with torch.inference_mode(False), torch.enable_grad():
            v = self.run_sgld(self.noise_like(n, generator), self.hparams.sample_steps, generator)
            y = self.to_data(v).detach()
        if not self.spec.is_image:
            return y
        k = self.spec.num_levels
        x = ((y + 1) / 2 * k).floor().long().clamp(0, k - 1)
        return x.view(n, *self.spec.shape)

    def sampling_cost(self) -> dict:
        # Each SGLD step is one forward and one backward pass of the energy network.
        return {"nfe": self.hparams.sample_steps, "sgld_steps": self.hparams.sample_steps}

    def log_z(self, cheap: bool = False) -> dict:
        """{'log_z', 'stderr', ...}, computed once and cached until the next training step.

        cheap=True (validation) uses val_ais_chains / val_ais_temps for images.
        """
        key = "val" if cheap else "test"
        if key not in self._log_z:
            with torch.inference_mode(False), torch.enable_grad():
                self._log_z[key] = self._compute_log_z(cheap)
        return self._log_z[key]

    def _compute_log_z(self, cheap: bool) -> dict:
        hp = self.hparams
        if not self.spec.is_image:
            lo, hi = self.box()
            with torch.no_grad():
                log_z, err = refined_grid_log_z(
                    self.flat_energy, lo.double(), hi.double(), hp.quadrature_n, hp.quadrature_tol
                )
            return {"log_z": log_z, "stderr": err}
        base = self.base()
        gen = torch.Generator(device=self.device).manual_seed(hp.ais_seed)
        chains, temps = (
            (hp.val_ais_chains, hp.val_ais_temps) if cheap else (hp.ais_chains, hp.ais_temps)
        )
        # A pilot run tunes the MALA step size per temperature; the main run keeps it fixed.
        e = self.flat_energy
        pilot = residual_ais_log_z(e, base, hp.ais_pilot_chains, temps, generator=gen)
        out = residual_ais_log_z(e, base, chains, temps, pilot["step_sizes"], generator=gen)
        return {k: out[k] for k in ("log_z", "stderr", "accept_rate")}

    def shared_nll_stderr_nats(self) -> float:
        return self.log_z()["stderr"]

    def nll(self, batch, cheap: bool = False) -> torch.Tensor:
        x = self.data(batch)
        log_z = self.log_z(cheap)["log_z"]
        if not self.spec.is_image:
            y = x.float().flatten(1)
            lo, hi = self.box()
            inside = ((y >= lo) & (y <= hi)).all(1)
            e = self.flat_energy(y)
            return torch.where(inside, e + log_z, torch.full_like(e, math.inf))
        s = self.hparams.nll_dequant_samples
        # -log q(y) - D log(2/K) is the base's discrete NLL (q is constant on each bin).
        e = torch.stack([self.flat_energy(self.dequantize(x)) for _ in range(s)]).mean(0)
        return self.base().level_nll(x.flatten(1)) + e + log_z

    # --- training -------------------------------------------------------------------
    def _replay_batch(self, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        hp = self.hparams
        if self.replay.numel() == 0:
            self.replay = self.noise_like(hp.buffer_size)
        idx = torch.randint(0, len(self.replay), (n,), device=self.device)
        y = self.replay[idx]
        fresh = torch.rand(n, device=self.device) < hp.reinit_prob
        y = torch.where(fresh[:, None], self.noise_like(n), y)
        return idx, y

    def training_step(self, batch, batch_idx: int) -> torch.Tensor:
        self._log_z = {}  # the weights are about to change
        hp = self.hparams
        x = self.data(batch)
        with torch.no_grad():
            flat = x.float().flatten(1)
            self.data_lo = torch.minimum(self.data_lo, flat.min(0).values)
            self.data_hi = torch.maximum(self.data_hi, flat.max(0).values)
        y_pos = self.dequantize(x)
        idx, v_neg = self._replay_batch(len(x))
        v_neg = self.run_sgld(v_neg, hp.sgld_steps)
        self.replay[idx] = v_neg
        with torch.no_grad():
            y_neg = self.to_data(v_neg)

        e_pos, e_neg = self.flat_energy(y_pos), self.flat_energy(y_neg)
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
        self.log_dict(
            {
                "train/loss": loss.detach(),
                "train/e_pos": e_pos.mean().detach(),
                "train/e_neg": e_neg.mean().detach(),
                "train/grad_norm": grad_norm,
            },
            batch_size=len(x),
        )
        return loss.detach()

    def validation_nll(self, batch) -> torch.Tensor:
        return self.nll(batch, cheap=True)

    def configure_optimizers(self):
        return torch.optim.Adam(self.energy.parameters(), lr=self.hparams.lr, betas=(0.0, 0.999))
