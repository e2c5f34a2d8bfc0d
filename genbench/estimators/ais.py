"""Annealed importance sampling (AIS) of log Z for an energy on the cube [-1, 1]^D.

The path f_b = base^(1 - b) exp(-b E), b from 0 to 1 on a sigmoid schedule (Grosse et al.,
2013), one reflected HMC leapfrog move with its accept test per temperature. AIS is unbiased
for Z, so log Z is biased low when the chain has not converged (Jensen and too few
temperatures): a schedule that is too short makes an NLL look too good. `ais_ladder` runs
several lengths on the same chains so that can be seen.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
import torch

from genbench.maths.distributions import bits_per_dim
from genbench.maths.histogram import HistogramBase
from genbench.samplers.langevin import energy_and_grad, reflect_with_flips

EnergyFn = Callable[[torch.Tensor], torch.Tensor]


def sigmoid_schedule(num_temps: int, delta: float = 4.0) -> torch.Tensor:
    """Inverse temperatures 0 = b_0 < ... < b_T = 1 (T + 1,) float64, dense at both ends."""
    t = torch.sigmoid(delta * (2 * torch.linspace(0, 1, num_temps + 1, dtype=torch.float64) - 1))
    return (t - t[0]) / (t[-1] - t[0])


def log_mean_exp(log_w: torch.Tensor) -> tuple[float, float]:
    """(log mean(w), its standard error) from log weights (N,): the stderr by the delta method,
    se(log Z_hat) = se(Z_hat) / Z_hat = std(w) / (mean(w) sqrt(N)). It is reliable while the log
    weights spread by a nat or two; with heavier tails the sample misses the weights that matter
    and both log Z and its stderr come out too small (trained digits EBM, 4000 temperatures,
    64 chains: log weights spread by ~5 nats, stderr ~0.5, but log Z varied by ~5 across seeds)."""
    n = len(log_w)
    w = torch.exp(log_w - log_w.max())
    return float(torch.logsumexp(log_w, 0) - math.log(n)), float(w.std() / (w.mean() * n**0.5))


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
    """AIS estimate of log Z = log of the integral of exp(-E) over [-1, 1]^D (E: (N, D) -> (N,)).

    Moves are one HMC leapfrog step reflected at the cube's faces (MALA's proposal). With
    `step_sizes` (T,) the kernels are fixed; without, the step size adapts towards
    `target_accept` and the schedule used is returned, so that a pilot run can set it for an
    unbiased main run. Returns log_z, stderr, log_w (num_chains,), betas (T + 1,), step_sizes
    (T,), accept_rate.
    """
    betas = sigmoid_schedule(num_temps)
    b = betas.tolist()
    dev = base.probs.device
    y = base.sample(num_chains, generator)
    log_q = base.log_prob(y)
    e, g = energy_and_grad(energy_fn, y)
    log_w = torch.zeros(num_chains, dtype=torch.float64, device=dev)
    adapt = step_sizes is None
    used = torch.empty(num_temps, dtype=torch.float64)
    s = init_step_size
    accepted = torch.zeros((), device=dev)
    for t in range(1, num_temps + 1):
        b0, b1 = b[t - 1], b[t]
        log_w += (b1 - b0) * (-e - log_q).double()
        if not adapt:
            s = float(step_sizes[t - 1])
        used[t - 1] = s

        # One leapfrog step of HMC (MALA's proposal, y - s^2/2 b dE + s p) with reflection at
        # the cube's faces: the base is piecewise constant, so the drift is -b dE/dy; a
        # proposal that left the cube and was rejected (the kernel before) made every move in
        # 64 dimensions fail when any one coordinate crossed a face, so steps shrank to ~0.02
        # and chains stopped mixing: log Z was off by 4-5 nats at any length on a factorised
        # energy whose log Z is known. Reflecting position and momentum keeps the leapfrog
        # map volume-preserving and reversible (Neal 2011, section 5.1), so MH stays exact.
        p0 = torch.randn(y.shape, generator=generator, device=dev, dtype=y.dtype)
        p_half = p0 - 0.5 * s * b1 * g
        y_new, flip = reflect_with_flips(y + s * p_half, -1.0, 1.0)
        p_half = torch.where(flip, -p_half, p_half)
        e_new, g_new = energy_and_grad(energy_fn, y_new)
        lq_new = base.log_prob(y_new)
        p_new = p_half - 0.5 * s * b1 * g_new
        log_f_new = (1 - b1) * lq_new - b1 * e_new
        log_f_old = (1 - b1) * log_q - b1 * e
        kinetic = 0.5 * ((p0**2).sum(1) - (p_new**2).sum(1))
        log_acc = log_f_new - log_f_old + kinetic
        u = torch.rand(num_chains, generator=generator, device=dev)
        acc = (torch.log(u) < log_acc) & torch.isfinite(log_acc)
        y = torch.where(acc[:, None], y_new, y)
        e = torch.where(acc, e_new, e)
        log_q = torch.where(acc, lq_new, log_q)
        g = torch.where(acc[:, None], g_new, g)
        rate = acc.float().mean()
        accepted += rate
        if adapt:
            s *= 1.05 if rate.item() > target_accept else 0.95
    log_z, stderr = log_mean_exp(log_w)
    return {
        "log_z": log_z,
        "stderr": stderr,
        "log_w": log_w,
        "betas": betas,
        "step_sizes": used,
        "accept_rate": float(accepted) / num_temps,
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

    def energy_v(v: torch.Tensor) -> torch.Tensor:
        return energy_fn(base.icdf((v + 1) / 2))

    uniform = HistogramBase.uniform(d, base.probs.device)
    out = ais_log_z(energy_v, uniform, num_chains, num_temps, step_sizes, generator=generator)
    out["log_z"] -= d * math.log(2)
    return out


def step_sizes_for(pilot: dict, num_temps: int) -> torch.Tensor:
    """The pilot's step sizes, as a function of the inverse temperature, on a schedule of
    `num_temps` temperatures (T,): one pilot tunes every length of a ladder."""
    betas = sigmoid_schedule(num_temps)[1:].numpy()
    steps = np.interp(betas, pilot["betas"][1:].numpy(), pilot["step_sizes"].numpy())
    return torch.from_numpy(steps)


def ais_ladder(
    energy_fn: EnergyFn,
    base: HistogramBase,
    num_chains: int,
    temps: Sequence[int],
    pilot_chains: int,
    seed: int,
    repeats: int = 1,
) -> list[dict]:
    """Residual AIS of log Z_E at increasing schedule lengths, each rung `repeats` independent
    runs of `num_chains` chains; with repeats > 1, until a lengthening moves log Z by less than
    the repetitions' spread (or `temps` ends: the stated cap); with one, every length.

    A pilot of `pilot_chains` chains at the shortest length tunes the step sizes; every rung
    runs its repeats x num_chains chains as one batch (the repetitions are disjoint groups of
    chains with fixed kernels, so independent) from the same base draws and noise stream
    (a generator seeded with seed + 1), so the change from one rung to the next measures the
    bias the shorter one left. Each rung's log Z pools all its chains (the log of the mean
    weight); its spread is the standard deviation of the repetitions' own estimates, and its
    standard error that spread over sqrt(repeats): measured, where the delta method's stderr of
    one run is too small once the weights are heavy-tailed. Deterministic given the energy and
    `seed`. Returns, per length run: temperatures, chains, repeats, log_z, log_z_repeats,
    log_z_spread, log_z_stderr, log_w_std (nats), accept_rate.
    """
    if repeats < 1:
        raise ValueError(f"ais repeats={repeats}; valid: >= 1")
    dev = base.probs.device
    pilot_gen = torch.Generator(device=dev).manual_seed(seed)
    pilot = residual_ais_log_z(energy_fn, base, pilot_chains, min(temps), generator=pilot_gen)
    rungs: list[dict] = []
    for t in sorted(int(t) for t in temps):
        gen = torch.Generator(device=dev).manual_seed(seed + 1)
        out = residual_ais_log_z(
            energy_fn, base, num_chains * repeats, t, step_sizes_for(pilot, t), generator=gen
        )
        log_w = out["log_w"]
        per = torch.tensor(
            [log_mean_exp(w)[0] for w in log_w.view(repeats, num_chains)], dtype=torch.float64
        ) - base.probs.shape[0] * math.log(2)  # residual_ais_log_z's shift, per repetition
        spread = float(per.std()) if repeats > 1 else None
        delta_stderr = log_mean_exp(log_w)[1]
        rungs.append(
            {
                "temperatures": t,
                "chains": int(num_chains * repeats),
                "repeats": int(repeats),
                "log_z": float(torch.logsumexp(per, 0) - math.log(repeats)),
                "log_z_repeats": per.tolist(),
                "log_z_spread": spread,
                "log_z_stderr": spread / repeats**0.5 if spread is not None else delta_stderr,
                # Above ~2 nats the weights are heavy-tailed and a delta-method stderr too small.
                "log_w_std": float(log_w.std()),
                "accept_rate": out["accept_rate"],
            }
        )
        if repeats > 1 and _converged(rungs):  # one run's own stderr is no stopping rule
            break
    return rungs


def _converged(rungs: list[dict]) -> bool:
    """The last lengthening moved log Z by at most the longest rung's spread over repetitions
    (one run: its standard error), or by float32 noise (1e-4 nats) where all weights agree; one
    rung cannot show it."""
    if len(rungs) < 2:
        return False
    last = rungs[-1]
    tolerance = (
        last["log_z_spread"] if last.get("log_z_spread") is not None else last["log_z_stderr"]
    )
    return abs(last["log_z"] - rungs[-2]["log_z"]) <= max(tolerance, 1e-4)


def ladder_summary(rungs: list[dict], mean_data_nats: float, num_dims: int) -> dict:
    """results.json's log_z_ladder, log_z_converged, log_z_last_move (nats, unsigned) and
    log_z_last_move_bpd (the NLL's change from the last doubling, signed: positive in
    expectation, AIS's log Z being low) for an NLL = data term + log Z. Each rung gets nll_bpd =
    (mean_data_nats + its log Z) / (D ln 2)."""
    ladder = [{**r, "nll_bpd": bits_per_dim(mean_data_nats + r["log_z"], num_dims)} for r in rungs]
    moved = ladder[-1]["log_z"] - ladder[-2]["log_z"] if len(ladder) > 1 else None
    return {
        "log_z_ladder": ladder,
        "log_z_converged": _converged(rungs),
        "log_z_last_move": abs(moved) if moved is not None else None,
        "log_z_last_move_bpd": bits_per_dim(moved, num_dims) if moved is not None else None,
    }
