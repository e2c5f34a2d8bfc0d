"""Fine detail and blur: the radially averaged power spectrum of images (Durall et al. 2020,
"Watch your up-convolution"), the samples' against the test split's.

An image's power at spatial frequency f = (u, v) (cycles per image) is |F(u, v)|^2, F its 2-D
DFT with pixels in [0, 1]; averaging over channels and over the frequencies of one ring
(round(|f|) = r, r = 0 .. the corner's radius) gives the image's radial spectrum. The spectrum of
a set is the mean of its images'. A blurry sampler has less power at high frequencies than the
data, a noisy or aliasing one more. One number summarises it:

    hf_power_ratio = high-band share of the samples' non-constant power
                     / the same share for the test split,

the high band being every ring above half the Nyquist radius (r > min(H, W) / 4: digits' 8x8 rings
3 to 6 of 0 to 6, MNIST's 28x28 rings 8 to 20). 1 is the data's balance, < 1 blurrier, > 1 more
high-frequency energy. Its interval resamples both the samples and the test images (bootstrap,
the evaluation's method and level). The ring r = 0 (each image's mean) is left out of the
shares: brightness is not detail.
"""

from __future__ import annotations

import math

import torch

from genbench.evaluation.bootstrap import bootstrap_interval, resample_indices


def ring_of_each_frequency(height: int, width: int) -> torch.Tensor:
    """(H, W) long: round(|f|) for the DFT's frequency grid, f in cycles per image."""
    u = torch.fft.fftfreq(height, d=1.0 / height)
    v = torch.fft.fftfreq(width, d=1.0 / width)
    return torch.sqrt(u[:, None] ** 2 + v[None, :] ** 2).round().long()


def radial_power_spectra(images: torch.Tensor, num_levels: int) -> torch.Tensor:
    """images long (N, C, H, W) in [0, num_levels) -> (N, R) float64: each image's power per ring
    r = 0 .. R - 1 (the mean over channels and over the ring's frequencies)."""
    x = images.double() / (num_levels - 1)
    power = torch.fft.fft2(x).abs().square().mean(1)  # (N, H, W)
    rings = ring_of_each_frequency(*x.shape[-2:]).flatten()
    count = torch.bincount(rings).double()
    total = torch.zeros(len(x), len(count), dtype=torch.float64)
    total.index_add_(1, rings, power.flatten(1))
    return total / count


def high_band(height: int, width: int) -> int:
    """The first ring of the high band: the rings above half the Nyquist radius min(H, W) / 2."""
    return math.floor(min(height, width) / 4) + 1


def hf_share(spectra: torch.Tensor, first_high: int) -> torch.Tensor:
    """The high band's share of the non-constant power (rings >= 1) of the mean spectrum;
    spectra (..., N, R) -> (...)."""
    mean = spectra.mean(-2)
    return mean[..., first_high:].sum(-1) / mean[..., 1:].sum(-1)


def spectrum_metrics(
    generated: torch.Tensor,
    test: torch.Tensor,
    num_levels: int,
    *,
    seed: int,
    bootstrap_resamples: int,
    ci_level: float,
    ci_method: str,
) -> dict:
    """SPECTRUM_KEYS of `generated` against `test` (both long (N, C, H, W) images)."""
    gen = radial_power_spectra(generated, num_levels)
    ref = radial_power_spectra(test, num_levels)
    first_high = high_band(*generated.shape[-2:])
    ratio = float(hf_share(gen, first_high) / hf_share(ref, first_high))
    out = {
        "hf_power_ratio": ratio,
        "hf_power_ratio_ci": None,
        "power_spectrum": gen.mean(0).tolist(),
        "power_spectrum_test": ref.mean(0).tolist(),
    }
    if bootstrap_resamples > 0:
        ratios = []
        gi = resample_indices(len(gen), bootstrap_resamples, seed)
        ri = resample_indices(len(ref), bootstrap_resamples, seed + 1)
        for g, r in zip(gi, ri, strict=True):
            ratios.append(hf_share(gen[g], first_high) / hf_share(ref[r], first_high))
        values = torch.stack(ratios)
        out["hf_power_ratio_ci"] = bootstrap_interval(values, ratio, ci_level, ci_method, 0.0)
    return out
