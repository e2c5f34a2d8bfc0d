"""Sample metrics against the real data: FID, KID, IS, precision/recall (torch-fidelity's
feature-level functions), their bootstrap intervals, density/coverage, class coverage, the power
spectrum's high band (images) and memorisation, from features extracted once.

The generated samples go through the data set's feature extractor once; the real splits'
features and everything else that depends on the real data alone come from RealData
(evaluation/reference.py). torch-fidelity's numbers are those of torch_fidelity.calculate_metrics
on the same inputs.
"""

from __future__ import annotations

import os

import torch
import torch_fidelity
from torch_fidelity.metric_fid import fid_features_to_statistics, fid_statistics_to_metric
from torch_fidelity.metric_isc import isc_features_to_metric
from torch_fidelity.metric_kid import kid_features_to_metric
from torch_fidelity.metric_prc import prc_features_to_metric

from genbench.core.loop_progress import Progress
from genbench.core.results import FIDELITY_KEYS
from genbench.core.settings import EvalSettings
from genbench.evaluation.bootstrap import (
    bootstrap_interval,
    fid_of_resamples,
    kid_of_resamples,
    resample_indices,
)
from genbench.evaluation.density_coverage import density_coverage
from genbench.evaluation.extractors import Extractor
from genbench.evaluation.features import FeatureSet
from genbench.evaluation.reference import RealData, reference_fid_statistics
from genbench.evaluation.spectrum import spectrum_metrics

_FROM_TORCH_FIDELITY = {
    torch_fidelity.KEY_METRIC_FID: "fid",
    torch_fidelity.KEY_METRIC_KID_MEAN: "kid_mean",
    torch_fidelity.KEY_METRIC_KID_STD: "kid_std",
    torch_fidelity.KEY_METRIC_ISC_MEAN: "is_mean",
    torch_fidelity.KEY_METRIC_ISC_STD: "is_std",
    torch_fidelity.KEY_METRIC_PRECISION: "precision",
    torch_fidelity.KEY_METRIC_RECALL: "recall",
}


def fidelity_from_features(
    gen: dict[str, torch.Tensor],
    ref: dict[str, torch.Tensor],
    layers: dict[str, str],
    *,
    ref_fid_statistics: dict | None = None,
    kid_subsets: int,
    kid_subset_size: int,
    isc_splits: int,
    prc_neighborhood: int,
    seed: int,
    bootstrap_resamples: int,
    ci_level: float,
    ci_method: str,
    density_coverage_k: int,
    ref_radii: torch.Tensor | None = None,
) -> dict:
    """The FIDELITY_KEYS metrics of generated vs reference features ({layer: (N, F)}), with
    the settings of the eval.* keys of the same names (metric_options(settings) gives them).

        FID, KID, IS, precision/recall: torch-fidelity's feature-level functions with the arguments
        torch_fidelity.calculate_metrics passes them. KID subsets have min(kid_subset_size, N, M)
        examples; IS is None without an "isc" layer (no logits). fid_ci, kid_ci: `ci_level`
        `ci_method` bootstrap intervals (bootstrap.bootstrap_interval) over `bootstrap_resamples`
        resamples of the generated features (None when 0); kid_ci is for the full-set unbiased
        MMD^2 (bootstrap.py), whose expectation kid_mean (an average over subsets) shares; it is
        placed around kid_mean. density, coverage: Naeem et al. (`ref_radii`: the reference's k-NN
        radii, when already computed).
    """
    n = min(len(gen[layers["fid"]]), len(ref[layers["fid"]]))
    if n < max(prc_neighborhood, density_coverage_k) + 1:
        raise ValueError(
            f"fidelity metrics need > {max(prc_neighborhood, density_coverage_k)} samples per "
            f"set, got {n}"
        )
    g, r = gen[layers["fid"]], ref[layers["fid"]]
    tf = {"verbose": False, "rng_seed": seed}
    ref_stats = ref_fid_statistics or fid_features_to_statistics(r)
    out = fid_statistics_to_metric(fid_features_to_statistics(g), ref_stats, verbose=False)
    out.update(
        kid_features_to_metric(
            gen[layers["kid"]],
            ref[layers["kid"]],
            kid_subsets=kid_subsets,
            kid_subset_size=min(kid_subset_size, n),
            **tf,
        )
    )
    out.update(
        prc_features_to_metric(
            gen[layers["prc"]],
            ref[layers["prc"]],
            prc_neighborhood=prc_neighborhood,
            save_cpu_ram=True,  # torch-fidelity's batched path, as calculate_metrics takes
            **tf,
        )
    )
    if "isc" in layers:
        out.update(isc_features_to_metric(gen[layers["isc"]], min(isc_splits, len(g)), True, seed))
    metrics = dict.fromkeys(FIDELITY_KEYS)
    metrics.update({ours: float(out[k]) for k, ours in _FROM_TORCH_FIDELITY.items() if k in out})
    if bootstrap_resamples > 0:
        idx = resample_indices(len(g), bootstrap_resamples, seed)
        metrics["fid_ci"] = fid_interval(g, ref_stats, metrics["fid"], idx, ci_level, ci_method)
        kid_g, kid_r = gen[layers["kid"]], ref[layers["kid"]]
        kids = kid_of_resamples(kid_g, kid_r, idx)
        # The interval of the full-set estimator, placed around the reported subset KID.
        metrics["kid_ci"] = bootstrap_interval(kids, metrics["kid_mean"], ci_level, ci_method)
        metrics["ci_method"] = f"{ci_method} bootstrap, {bootstrap_resamples} resamples"
    metrics.update(density_coverage(g, r, density_coverage_k, ref_radii))
    return metrics


def fid_interval(
    g: torch.Tensor, ref_stats: dict, fid: float, idx: torch.Tensor, level: float, method: str
) -> list[float]:
    """The bootstrap interval of FID over resamples `idx` of the generated features `g`."""
    mu, sigma = (torch.as_tensor(ref_stats[k]) for k in ("mu", "sigma"))
    return bootstrap_interval(fid_of_resamples(g, mu, sigma, idx), fid, level, method, 0.0)


def compute_fidelity(
    generated: torch.Tensor,
    reference: torch.Tensor,
    extractor: Extractor,
    *,
    reference_name: str | None = None,
    cache_dir: str | os.PathLike,
    device: torch.device | str = "cpu",
    batch_size: int,
    **metric_kwargs,
) -> dict:
    """FIDELITY_KEYS metrics of `generated` against `reference` (both data space).

    generated, reference: long (N, C, H, W) in [0, K) or float (N, D). The reference's features
    and FID statistics are cached under `reference_name` (see reference_cache_name) when given.
    cache_dir, batch_size: eval.cache_dir, eval.fidelity_batch_size. metric_kwargs: those of
    fidelity_from_features (seed and metric_options(settings)).
    """
    features = FeatureSet(extractor, device=device, batch_size=batch_size, cache_dir=cache_dir)
    ref = features.cached(reference, reference_name)
    return fidelity_from_features(
        features(generated),
        ref,
        features.layers,
        ref_fid_statistics=reference_fid_statistics(features, ref, reference_name),
        **metric_kwargs,
    )


@torch.inference_mode()
def _draw(module, n: int, batch_size: int, seed: int) -> list[torch.Tensor]:
    gen = torch.Generator(device=module.device).manual_seed(seed)
    progress = Progress("sampling", n, "samples")
    out = []
    for i in range(0, n, batch_size):
        out.append(module.sample(min(batch_size, n - i), generator=gen).cpu())
        progress(min(n, i + batch_size))
    return out


def generate(module, n: int, batch_size: int, seed: int) -> torch.Tensor:
    """n samples from `module.sample`, in batches, from one seeded generator; on the CPU."""
    module.eval()
    return torch.cat(_draw(module, n, batch_size, seed))  # outside inference mode: a plain tensor


def metric_options(settings: EvalSettings) -> dict:
    """fidelity_from_features' options, from the evaluation settings."""
    s = settings
    return dict(
        kid_subsets=s.kid_subsets,
        kid_subset_size=s.kid_subset_size,
        isc_splits=s.isc_splits,
        prc_neighborhood=s.prc_neighborhood,
        bootstrap_resamples=s.bootstrap_resamples,
        ci_level=s.ci_level,
        ci_method=s.ci_method,
        density_coverage_k=s.density_coverage_k,
    )


def score_samples(
    generated: torch.Tensor,
    real: RealData,
    seed: int,
    gen_features: dict | None = None,
    memorisation_set: torch.Tensor | None = None,
) -> dict:
    """Every sample metric of `generated` (data space) against the real data: fidelity against
    the test split (+ class coverage with a classifier extractor), and, when the settings ask,
    memorisation of the first memorisation_samples of them (or of `memorisation_set`, the
    floor's) against the training split. `gen_features`: generated's features, when already
    extracted."""
    s = real.settings
    features = real.features
    gen_features = features(generated) if gen_features is None else gen_features
    k = s.density_coverage_k
    enough = len(real.test_features[real.layer]) > k
    metrics = fidelity_from_features(
        gen_features,
        real.test_features,
        features.layers,
        ref_fid_statistics=real.fid_statistics,
        ref_radii=real.test_radii(k) if enough else None,
        seed=seed,
        **metric_options(s),
    )
    if real.extractor.kind == "classifier":  # mode dropping, visible per class
        classes = real.test_classes()
        metrics.update(class_coverage(gen_features[features.layers["isc"]], classes["counts"]))
        metrics["extractor_test_accuracy"] = classes["accuracy"]
    if real.spec.is_image:  # blur and fine detail: the samples' power spectrum against the test's
        metrics.update(
            spectrum_metrics(
                generated,
                real.test,
                real.spec.num_levels,
                seed=seed,
                bootstrap_resamples=s.bootstrap_resamples,
                ci_level=s.ci_level,
                ci_method=s.ci_method,
            )
        )
    metrics.update(fidelity_num_samples=len(generated), fidelity_extractor=real.extractor.kind)
    if s.memorisation:
        if memorisation_set is not None:
            metrics.update(real.memorisation(memorisation_set, None, s.memorisation_pixels))
        else:
            m = s.memorisation_samples or len(generated)
            sub = {name: f[:m] for name, f in gen_features.items()}
            metrics.update(real.memorisation(generated[:m], sub, s.memorisation_pixels))
    return metrics


def class_coverage(gen_logits: torch.Tensor, reference_counts: torch.Tensor) -> dict:
    """Samples per class as the evaluation classifier labels them (from the logits the features
    already hold), against the reference split's class counts.

    class_counts: generated samples per predicted class; classes_covered: classes holding at
    least 1% of the samples; class_kl: KL(generated class frequencies || reference's), in nats.
    """
    gen = torch.bincount(gen_logits.argmax(1), minlength=gen_logits.shape[1]).double()
    ref = reference_counts.double()
    p, q = gen / gen.sum(), (ref + 0.5) / (ref + 0.5).sum()
    kl = float((p[p > 0] * (p[p > 0] / q[p > 0]).log()).sum())
    return {
        "class_counts": [int(c) for c in gen],
        "class_kl": kl,
        "classes_covered": int((p >= 0.01).sum()),
    }
