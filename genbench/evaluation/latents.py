"""How smoothly a family's samples change along paths in its latent space (issue 33: "a VAE's
latent space is smooth"): a perceptual path length in the data set's classifier's features
(Karras et al. 2019, StyleGAN, with the classifier's penultimate features in place of VGG's), and
how many of the images between two samples the classifier still reads as a digit.

A module offers this with `latent_draw(n, generator)` (prior draws, flat) and
`decode_latent(z)` (the deterministic image of each z before rounding, (n, C, H, W) in [0, 1]):
the VAE (its decoder's mean), the GAN (its generator) and the flow (its inverse). Pairs of prior
draws z1, z2 are joined by spherical interpolation (the prior is Gaussian), t ~ U[0, 1 - eps]:

- latent_path_length: the mean of |f(g(slerp(z1, z2, t + eps))) - f(g(slerp(z1, z2, t)))|^2 /
  eps^2 over pairs, f the classifier's features, g decode_latent, eps = 1e-4, after dropping the
  pairs below the 1st and above the 99th percentile (as Karras et al.); its interval a bootstrap
  over the pairs;
- interpolant_confidence: the share of the images at t whose classifier's top class has
  probability >= 0.9; endpoint_confidence: the same share for the images at t = 0 (prior
  samples), so a dip between samples shows as their difference.

Path lengths compare families with the same classifier (one data set), not across data sets.
"""

from __future__ import annotations

import torch

from genbench.evaluation.bootstrap import bootstrap_interval, resample_indices
from genbench.evaluation.classifier import build_classifier, load_classifier

LATENT_PAIRS = 256
EPSILON = 1e-4
CONFIDENT = 0.9


def slerp(z1: torch.Tensor, z2: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Spherical interpolation of rows z1, z2 (n, L) at t (n,), in float64."""
    a, b = z1.double(), z2.double()
    cos = ((a * b).sum(1) / (a.norm(dim=1) * b.norm(dim=1))).clamp(-1, 1)
    omega = torch.arccos(cos)[:, None]
    t = t.double()[:, None]
    sin = torch.sin(omega)
    return (torch.sin((1 - t) * omega) * a + torch.sin(t * omega) * b) / sin


def path_lengths(decode, features, z1, z2, t, eps: float = EPSILON) -> torch.Tensor:
    """(n,): |features(decode(slerp(t + eps))) - features(decode(slerp(t)))|^2 / eps^2,
    with the latents in float64 and the features computed in float64."""
    a = features(decode(slerp(z1, z2, t)).double())
    b = features(decode(slerp(z1, z2, t + eps)).double())
    return (b - a).square().flatten(1).sum(1) / eps**2


def trimmed_mean(
    x: torch.Tensor, low: float = 0.01, high: float = 0.99
) -> tuple[float, torch.Tensor]:
    """The mean of the values between the `low` and `high` quantiles, and those values."""
    lo, hi = torch.quantile(x, torch.tensor([low, high], dtype=x.dtype))
    kept = x[(x >= lo) & (x <= hi)]
    return float(kept.mean()), kept


def latent_metrics(module, real, seed: int, n: int = LATENT_PAIRS) -> dict:
    """LATENT_KEYS of the module against the data set's classifier (real: reference.RealData);
    {} where the module has no latent decoder or the data set no classifier."""
    if not (hasattr(module, "decode_latent") and real.extractor.kind == "classifier"):
        return {}
    net, _ = build_classifier(load_classifier(real.extractor.weights_path))
    net = net.double().to(module.device)
    gen = torch.Generator(device=module.device).manual_seed(seed)
    z1, z2 = module.latent_draw(n, gen), module.latent_draw(n, gen)
    t = torch.rand(n, generator=gen, device=module.device) * (1 - EPSILON)
    dtype = next(module.parameters()).dtype

    def decode(z: torch.Tensor) -> torch.Tensor:
        return module.decode_latent(z.to(dtype))

    def features(x: torch.Tensor) -> torch.Tensor:
        return net(x)[0]

    def confident(x: torch.Tensor) -> float:
        probs = torch.softmax(net(x.double())[1], 1)
        return float((probs.max(1).values >= CONFIDENT).double().mean())

    with torch.no_grad():
        lengths = path_lengths(decode, features, z1, z2, t).cpu()
        value, kept = trimmed_mean(lengths)
        s = real.settings
        interval = None
        if s.bootstrap_resamples > 0:
            idx = resample_indices(len(kept), s.bootstrap_resamples, seed)
            interval = bootstrap_interval(kept[idx].mean(1), value, s.ci_level, s.ci_method, 0.0)
        return {
            "latent_path_length": value,
            "latent_path_length_ci": interval,
            "interpolant_confidence": confident(decode(slerp(z1, z2, t))),
            "endpoint_confidence": confident(decode(z1.double())),
        }
