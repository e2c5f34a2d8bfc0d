"""Sample metrics against the real data: FID, KID, IS, precision/recall (torch-fidelity's
feature-level functions), their bootstrap intervals, density/coverage and memorisation.

The generated samples, the test split and the training split go through the data set's feature
extractor once each (the real splits' features from the file cache after the first time); every
metric is then computed from those features, so torch-fidelity's numbers are those of
torch_fidelity.calculate_metrics on the same inputs.
"""

from __future__ import annotations

import copy
import os

import torch
import torch_fidelity
from torch_fidelity.metric_fid import fid_features_to_statistics, fid_statistics_to_metric
from torch_fidelity.metric_isc import isc_features_to_metric
from torch_fidelity.metric_kid import kid_features_to_metric
from torch_fidelity.metric_prc import prc_features_to_metric
from torch_fidelity.utils import cache_lookup_one_recompute_on_miss

from genbench.evaluation.bootstrap import (
    bootstrap_interval,
    fid_of_resamples,
    kid_of_resamples,
    resample_indices,
)
from genbench.evaluation.density_coverage import density_coverage
from genbench.evaluation.extractors import (
    Extractor,
    build_classifier,
    classifier_accuracy,
    load_classifier,
    resolve_extractor,
)
from genbench.evaluation.features import FeatureSet, reference_cache_name
from genbench.evaluation.memorisation import MEMORISATION_KEYS, memorisation_metrics
from genbench.evaluation.throughput import measure_throughput

FIDELITY_KEYS = (
    "fid",
    "fid_ci",
    "kid_mean",
    "kid_std",
    "kid_ci",
    "is_mean",
    "is_std",
    "precision",
    "recall",
    "density",
    "coverage",
)
PIXEL_MEMORISATION_KEYS = tuple(f"{k}_pixels" for k in MEMORISATION_KEYS)
_FROM_TORCH_FIDELITY = {
    torch_fidelity.KEY_METRIC_FID: "fid",
    torch_fidelity.KEY_METRIC_KID_MEAN: "kid_mean",
    torch_fidelity.KEY_METRIC_KID_STD: "kid_std",
    torch_fidelity.KEY_METRIC_ISC_MEAN: "is_mean",
    torch_fidelity.KEY_METRIC_ISC_STD: "is_std",
    torch_fidelity.KEY_METRIC_PRECISION: "precision",
    torch_fidelity.KEY_METRIC_RECALL: "recall",
}


def reference_fid_statistics(
    features: FeatureSet, ref: dict[str, torch.Tensor], cache_name: str | None
) -> dict:
    """torch-fidelity's FID statistics {mu, sigma} of a real split, file-cached like its features
    (`<cache_name>-<extractor>-stat-fid-<layer>.pt`, torch-fidelity's name)."""
    layer = features.layers["fid"]
    name = f"{cache_name}-{features.extractor.name}-stat-fid-{layer}"
    return cache_lookup_one_recompute_on_miss(
        name, lambda: fid_features_to_statistics(ref[layer]), **features.cache_kwargs(cache_name)
    )


def fidelity_from_features(
    gen: dict[str, torch.Tensor],
    ref: dict[str, torch.Tensor],
    layers: dict[str, str],
    *,
    ref_fid_statistics: dict | None = None,
    kid_subsets: int = 100,
    kid_subset_size: int = 1000,
    isc_splits: int = 10,
    prc_neighborhood: int = 3,
    seed: int = 0,
    bootstrap_resamples: int = 1000,
    ci_level: float = 0.95,
    ci_method: str = "normal",
    density_coverage_k: int = 5,
) -> dict:
    """The FIDELITY_KEYS metrics of generated vs reference features ({layer: (N, F)}).

    FID, KID, IS, precision/recall: torch-fidelity's feature-level functions with the arguments
    torch_fidelity.calculate_metrics passes them. KID subsets have min(kid_subset_size, N, M)
    examples; IS is None without an "isc" layer (no logits). fid_ci, kid_ci: `ci_level`
    `ci_method` bootstrap intervals (bootstrap.bootstrap_interval) over `bootstrap_resamples`
    resamples of the generated features (None when 0); kid_ci is for the full-set unbiased
    MMD^2 (bootstrap.py), whose expectation kid_mean (an average over subsets) shares; it is
    placed around kid_mean. density, coverage: Naeem et al.
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
    metrics.update(density_coverage(g, r, density_coverage_k))
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
    cache_dir: str | os.PathLike = "~/.cache/genbench",
    device: torch.device | str = "cpu",
    batch_size: int = 256,
    **metric_kwargs,
) -> dict:
    """FIDELITY_KEYS metrics of `generated` against `reference` (both data space).

    generated, reference: long (N, C, H, W) in [0, K) or float (N, D). The reference's features
    and FID statistics are cached under `reference_name` (see reference_cache_name) when given.
    metric_kwargs: those of fidelity_from_features.
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
    return [
        module.sample(min(batch_size, n - i), generator=gen).cpu() for i in range(0, n, batch_size)
    ]


def generate(module, n: int, batch_size: int = 256, seed: int = 0) -> torch.Tensor:
    """n samples from `module.sample`, in batches, from one seeded generator; on the CPU."""
    module.eval()
    return torch.cat(_draw(module, n, batch_size, seed))  # outside inference mode: a plain tensor


def pixels(x: torch.Tensor, num_levels: int) -> torch.Tensor:
    """Images long (N, C, H, W) in [0, K) -> (N, C*H*W) float32 in [0, 1]: pixel vectors."""
    return x.flatten(1).float() / (num_levels - 1)


class RealData:
    """A data module's real splits as the sample metrics see them: the extractor, one network,
    the test split (first `max_reference_samples`) and its features (file-cached)."""

    def __init__(
        self,
        datamodule,
        *,
        device: torch.device | str = "cpu",
        batch_size: int = 256,
        cache_dir: str | os.PathLike = "~/.cache/genbench",
        inception_weights: str | None = None,
        inception_download: bool = True,
        max_reference_samples: int | None = None,
    ):
        self.datamodule = datamodule
        self.spec = datamodule.spec
        self.extractor = resolve_extractor(
            datamodule, cache_dir, inception_weights, inception_download
        )
        self.features = FeatureSet(
            self.extractor, device=device, batch_size=batch_size, cache_dir=cache_dir
        )
        self.test = _first(datamodule.split("test")[0], max_reference_samples)
        self.test_name = reference_cache_name(self.spec.name, "test", self.test, self.extractor)
        self.test_features = self.features.cached(self.test, self.test_name)

    def fidelity(self, generated: torch.Tensor, gen_features: dict | None = None, **kwargs) -> dict:
        """FIDELITY_KEYS (+ class counts with the classifier extractor) of `generated` (data
        space) against the test split; kwargs: those of fidelity_from_features."""
        features = self.features
        metrics = fidelity_from_features(
            features(generated) if gen_features is None else gen_features,
            self.test_features,
            features.layers,
            ref_fid_statistics=reference_fid_statistics(
                features, self.test_features, self.test_name
            ),
            **kwargs,
        )
        if self.extractor.kind == "classifier":  # mode dropping, visible per class
            metrics.update(class_coverage(generated, self.test, self.extractor))
            metrics["extractor_test_accuracy"] = self.extractor_test_accuracy()
        return {
            **metrics,
            "fidelity_num_samples": len(generated),
            "fidelity_extractor": self.extractor.kind,
        }

    def extractor_test_accuracy(self) -> float:
        """The classifier extractor's accuracy on the reference (test) images it scores against."""
        labels = _first(self.datamodule.split("test")[1], len(self.test))
        return classifier_accuracy(load_classifier(self.extractor.weights_path), self.test, labels)

    def memorisation(
        self,
        generated: torch.Tensor,
        train: torch.Tensor | None = None,
        gen_features: dict | None = None,
        *,
        max_train_samples: int | None = None,
        pixel_space: bool = True,
        **kwargs,
    ) -> dict:
        """MEMORISATION_KEYS of `generated` against the training split (or `train`, its first
        `max_train_samples`), in the extractor's feature space and, for images with
        `pixel_space`, in pixel space (keys ending _pixels; None otherwise). Test-split
        distances calibrate them. kwargs: those of memorisation_metrics."""
        metrics = dict.fromkeys(MEMORISATION_KEYS + PIXEL_MEMORISATION_KEYS)
        if train is None:
            train = self.datamodule.split("train")[0]
        train = _first(train, max_train_samples)
        name = reference_cache_name(self.spec.name, "train", train, self.extractor)
        layer = self.features.layers["fid"]
        gen = (self.features(generated) if gen_features is None else gen_features)[layer]
        if torch.isfinite(gen).all():  # a diverged sampler's NaNs have no neighbours
            train_f = self.features.cached(train, name)[layer]
            metrics.update(memorisation_metrics(gen, self.test_features[layer], train_f, **kwargs))
        if pixel_space and self.spec.is_image:
            k = self.spec.num_levels
            m = memorisation_metrics(
                pixels(generated, k), pixels(self.test, k), pixels(train, k), **kwargs
            )
            metrics.update({f"{key}_pixels": value for key, value in m.items()})
        return metrics


def evaluate_samples(
    generated: torch.Tensor,
    datamodule,
    *,
    device: torch.device | str = "cpu",
    batch_size: int = 256,
    seed: int = 0,
    cache_dir: str | os.PathLike = "~/.cache/genbench",
    inception_weights: str | None = None,
    inception_download: bool = True,
    max_reference_samples: int | None = None,
    max_train_samples: int | None = None,
    memorisation: bool = True,
    memorisation_pixels: bool = True,
    copy_percentile: float = 1.0,
    ct_cells: int = 10,
    ct_min_generated: int = 20,
    **fidelity_kwargs,
) -> dict:
    """Every sample metric of `generated` (data space) against the data module's real data:
    fidelity against the test split, memorisation against the training split (RealData).
    fidelity_kwargs: those of fidelity_from_features (kid_subsets, ..., bootstrap_resamples)."""
    real = RealData(
        datamodule,
        device=device,
        batch_size=batch_size,
        cache_dir=cache_dir,
        inception_weights=inception_weights,
        inception_download=inception_download,
        max_reference_samples=max_reference_samples,
    )
    gen_features = real.features(generated)
    metrics = real.fidelity(generated, gen_features, seed=seed, **fidelity_kwargs)
    if memorisation:
        metrics.update(
            real.memorisation(
                generated,
                gen_features=gen_features,
                max_train_samples=max_train_samples,
                pixel_space=memorisation_pixels,
                copy_percentile=copy_percentile,
                ct_cells=ct_cells,
                ct_min_generated=ct_min_generated,
                seed=seed,
            )
        )
    return metrics


def evaluate_fidelity(
    module,
    datamodule,
    *,
    num_samples: int = 1000,
    batch_size: int = 256,
    seed: int = 0,
    **kwargs,
) -> dict:
    """evaluate_samples of `num_samples` samples of `module` (kwargs: those of evaluate_samples)."""
    generated = generate(module, num_samples, batch_size, seed)
    return evaluate_samples(
        generated, datamodule, device=module.device, batch_size=batch_size, seed=seed, **kwargs
    )


def evaluate_curve(
    module,
    datamodule,
    settings: list[dict],
    *,
    num_samples: int = 1000,
    batch_size: int = 256,
    seed: int = 0,
    throughput_samples: int = 256,
    throughput_batch_size: int = 256,
    throughput_warmup_batches: int = 1,
    cache_dir: str | os.PathLike = "~/.cache/genbench",
    inception_weights: str | None = None,
    inception_download: bool = True,
    max_reference_samples: int | None = None,
    bootstrap_resamples: int = 1000,
    ci_level: float = 0.95,
    ci_method: str = "normal",
) -> list[dict]:
    """One checkpoint under several samplers: for each {sampler, steps} of `settings`, a copy of
    `module` configured with it (configure_sampler), its FID with interval on `num_samples`
    samples (the same noise seed as the main evaluation) and its samples/s.

    Returns [{sampler (the family's label, e.g. "DDIM-10"), nfe, fid, fid_ci, samples_per_s}].
    Only FID and its interval are computed per setting (bootstrap_resamples, ci_level, ci_method
    as in the main evaluation).
    """
    if not settings:
        return []
    real = RealData(
        datamodule,
        device=module.device,
        batch_size=batch_size,
        cache_dir=cache_dir,
        inception_weights=inception_weights,
        inception_download=inception_download,
        max_reference_samples=max_reference_samples,
    )
    layer = real.features.layers["fid"]
    ref_stats = reference_fid_statistics(real.features, real.test_features, real.test_name)
    points = []
    for setting in settings:
        configured = copy.deepcopy(module)
        configured.configure_sampler(str(setting["sampler"]), int(setting["steps"]))
        g = real.features(generate(configured, num_samples, batch_size, seed))[layer]
        fid = float(
            fid_statistics_to_metric(fid_features_to_statistics(g), ref_stats, verbose=False)[
                torch_fidelity.KEY_METRIC_FID
            ]
        )
        ci = None
        if bootstrap_resamples > 0:
            idx = resample_indices(len(g), bootstrap_resamples, seed)
            ci = fid_interval(g, ref_stats, fid, idx, ci_level, ci_method)
        speed = measure_throughput(
            configured, throughput_samples, throughput_batch_size, throughput_warmup_batches, seed
        )
        cost = configured.sampling_cost()
        points.append(
            {
                "sampler": cost["sampler"],
                "nfe": cost["nfe"],
                "fid": fid,
                "fid_ci": ci,
                "samples_per_s": speed.get("samples_per_s"),
            }
        )
    return points


@torch.no_grad()
def class_coverage(generated: torch.Tensor, reference: torch.Tensor, extractor) -> dict:
    """Samples per class as the evaluation classifier labels them, against the reference split.

    class_counts: generated samples per predicted class; classes_covered: classes holding at
    least 1% of the samples; class_kl: KL(generated class frequencies || reference's), in nats.
    """
    net, k = build_classifier(load_classifier(extractor.weights_path))

    def freq(x: torch.Tensor) -> torch.Tensor:
        logits = torch.cat([net(c.float() / (k - 1))[1] for c in x.cpu().split(512)])
        return torch.bincount(logits.argmax(1), minlength=logits.shape[1]).double()

    gen, ref = freq(generated), freq(reference)
    p, q = gen / gen.sum(), (ref + 0.5) / (ref + 0.5).sum()
    kl = float((p[p > 0] * (p[p > 0] / q[p > 0]).log()).sum())
    return {
        "class_counts": [int(c) for c in gen],
        "class_kl": kl,
        "classes_covered": int((p >= 0.01).sum()),
    }


def floor_split(train: torch.Tensor, num_samples: int, seed: int) -> dict[str, torch.Tensor]:
    """The real-data floor's sets, from a seeded permutation of the train split.

    "fidelity": num_samples training examples (all of train when smaller), so the fidelity
    metrics, whose bias depends on the sample count, are those of a perfect model at the
    models' sample count. "generated", "train": for memorisation, min(num_samples,
    len(train) // 2) training examples held out as what a perfect model would draw afresh, and
    the rest as the training set it learnt from. Where train is large (>= 2 num_samples) the held
    out slice is the fidelity set itself; on small data (digits: 1000) it is half of train.
    """
    perm = torch.randperm(len(train), generator=torch.Generator().manual_seed(seed))
    held_out = min(num_samples, len(train) // 2)
    return {
        "fidelity": train[perm[:num_samples]],
        "generated": train[perm[:held_out]],
        "train": train[perm[held_out:]],
    }


def real_data_floor(
    datamodule,
    *,
    num_samples: int = 1000,
    seed: int = 0,
    device: str = "cpu",
    batch_size: int = 256,
    cache_dir: str | os.PathLike = "~/.cache/genbench",
    inception_weights: str | None = None,
    inception_download: bool = True,
    max_reference_samples: int | None = None,
    max_train_samples: int | None = None,
    memorisation: bool = True,
    memorisation_pixels: bool = True,
    copy_percentile: float = 1.0,
    ct_cells: int = 10,
    ct_min_generated: int = 20,
    **fidelity_kwargs,
) -> dict:
    """Every sample metric for real training examples in place of samples (floor_split): what
    a perfect model scores. Arguments: those of evaluate_samples."""
    sets = floor_split(datamodule.split("train")[0], num_samples, seed)
    real = RealData(
        datamodule,
        device=device,
        batch_size=batch_size,
        cache_dir=cache_dir,
        inception_weights=inception_weights,
        inception_download=inception_download,
        max_reference_samples=max_reference_samples,
    )
    metrics = real.fidelity(sets["fidelity"], seed=seed, **fidelity_kwargs)
    if memorisation:
        metrics.update(
            real.memorisation(
                sets["generated"],
                sets["train"],
                max_train_samples=max_train_samples,
                pixel_space=memorisation_pixels,
                copy_percentile=copy_percentile,
                ct_cells=ct_cells,
                ct_min_generated=ct_min_generated,
                seed=seed,
            )
        )
    return metrics


def _first(x: torch.Tensor, max_samples: int | None) -> torch.Tensor:
    return x[:max_samples] if max_samples else x
