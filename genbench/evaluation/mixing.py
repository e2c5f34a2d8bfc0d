"""How far an energy-based model's sampling chains move, beyond FID against chain length
(issue 33: "EBMs are hard to sample"): the chains of the model's own sampler, traced.

MIXING_CHAINS chains start where the sampler starts and take its steps (the same draws as
`module.sample`); over the second half of each chain (after as many steps as it keeps):

- chain_energy_iat: the integrated autocorrelation time of the energy (Sokal's automatic
  window, c = 5; emcee's estimator), the median over chains: a chain of L steps holds about
  L / iat independent energies, and an iat near L means the chain has not mixed at all;
- chain_class_changes: the share of chains whose label under the data set's classifier at the
  end differs from the label at the midpoint (a chain that crosses between digits mixes between
  modes; a sampler stuck in a local mode changes none);
- chain_distance: the mean pixel distance (pixels in [0, 1]) from each chain's midpoint to its
  end, over the mean distance between two test images (1: as far as one real image from another).

A module offers this with `chain_images(v)` beside the sampler's own `noise_like`, `langevin`,
`flat_energy` and `to_data` (the EBM).
"""

from __future__ import annotations

import math

import torch

# Chains traced: enough for a median and a share to within a few percent; the samplers' cost
# at 256 is a fraction of the 1000 samples the sample metrics draw.
MIXING_CHAINS = 256
SOKAL_C = 5.0


def autocovariance(x: torch.Tensor) -> torch.Tensor:
    """x (T, N) -> (T, N): each column's autocovariance at lags 0 .. T-1, sum_t / T (biased,
    as Sokal's estimator takes it), by FFT with zero padding."""
    x = x.double() - x.double().mean(0)
    t = len(x)
    n = 2 ** math.ceil(math.log2(2 * t))
    f = torch.fft.rfft(x, n=n, dim=0)
    return torch.fft.irfft(f * f.conj(), n=n, dim=0)[:t] / t


def integrated_autocorrelation_time(x: torch.Tensor, c: float = SOKAL_C) -> torch.Tensor:
    """x (T, N): N chains of T draws -> (N,): tau(M) = 1 + 2 sum_{k=1}^{M} rho(k) at the smallest
    window M >= c tau(M) (the last lag where none is); NaN for a chain that never moves."""
    acov = autocovariance(x)
    rho = acov / acov[0]
    taus = 2 * rho.cumsum(0) - 1  # rho(0) = 1
    lags = torch.arange(len(x), dtype=taus.dtype)[:, None]
    ok = lags >= c * taus
    last = torch.full((x.shape[1],), len(x) - 1, dtype=torch.long)
    window = torch.where(ok.any(0), ok.double().argmax(0), last)
    tau = taus.gather(0, window[None])[0]
    return torch.where(acov[0] > 0, tau, torch.full_like(tau, math.nan))


def mean_pair_distance(images: torch.Tensor, num_levels: int, seed: int) -> float:
    """The mean L2 distance between random pairs of distinct `images` (pixels in [0, 1])."""
    x = images.flatten(1).double() / (num_levels - 1)
    gen = torch.Generator().manual_seed(seed)
    i = torch.randperm(len(x), generator=gen)
    half = len(x) // 2
    return float((x[i[:half]] - x[i[half : 2 * half]]).norm(dim=1).mean())


@torch.inference_mode()
def trace_chains(module, n: int, steps: int, seed: int) -> dict:
    """{"energy": (steps + 1, n), "mid": images, "end": images} of the module's sampler: n chains
    from its start, one step at a time, with the draws `module.sample(n)` makes from `seed`."""
    gen = torch.Generator(device=module.device).manual_seed(seed)
    energies, mid = [], None
    with torch.inference_mode(False), torch.enable_grad():
        v = module.noise_like(n, gen)
        for step in range(steps + 1):
            if step:
                v = module.langevin(v, 1, gen)
            with torch.no_grad():
                energies.append(module.flat_energy(module.to_data(v)).double().cpu())
            if step == steps // 2:
                mid = module.chain_images(v).cpu()
    return {"energy": torch.stack(energies), "mid": mid, "end": module.chain_images(v).cpu()}


def mixing_metrics(module, real, seed: int, n: int = MIXING_CHAINS) -> dict:
    """MIXING_KEYS of the module's sampler against the real data `real` (reference.RealData)."""
    spec = real.spec
    if not (hasattr(module, "chain_images") and spec.is_image):
        return {}
    steps = module.sample_steps
    trace = trace_chains(module, n, steps, seed)
    second_half = trace["energy"][steps // 2 :]
    out = {
        "chain_energy_iat": float(torch.nanmedian(integrated_autocorrelation_time(second_half))),
        "chain_steps_traced": len(second_half) - 1,
        "chain_class_changes": None,
    }
    k = spec.num_levels
    moved = (trace["end"] - trace["mid"]).flatten(1).double().div(k - 1).norm(dim=1).mean()
    out["chain_distance"] = float(moved) / mean_pair_distance(real.test, k, seed)
    if real.extractor.kind == "classifier":
        logits = real.features.layers["isc"]
        labels = [real.features(trace[w])[logits].argmax(1) for w in ("mid", "end")]
        out["chain_class_changes"] = float((labels[0] != labels[1]).double().mean())
    return out
