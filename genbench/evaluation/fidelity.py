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
from collections.abc import Callable
from pathlib import Path

import torch
import torch_fidelity
from torch_fidelity.metric_fid import fid_features_to_statistics, fid_statistics_to_metric
from torch_fidelity.metric_isc import isc_features_to_metric
from torch_fidelity.metric_kid import kid_features_to_metric
from torch_fidelity.metric_prc import prc_features_to_metric
from torch_fidelity.utils import cache_lookup_one_recompute_on_miss

from genbench.core.atomic import atomic_write
from genbench.evaluation.bootstrap import (
    bootstrap_interval,
    fid_of_resamples,
    kid_of_resamples,
    resample_indices,
)
from genbench.evaluation.density_coverage import density_coverage
from genbench.evaluation.extractors import (
    Extractor,
    classifier_accuracy,
    load_classifier,
    resolve_extractor,
)
from genbench.evaluation.features import FeatureSet, reference_cache_name
from genbench.evaluation.memorisation import (
    MEMORISATION_KEYS,
    TrainReference,
    memorisation_metrics,
    train_reference,
)
from genbench.evaluation.neighbours import kth_neighbour_radius
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
# k-means cells of the training set are part of the reference, the same for every run and
# evaluation seed (so they are computed once per data set and cached).
REFERENCE_SEED = 0
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
    ref_radii: torch.Tensor | None = None,
) -> dict:
    """The FIDELITY_KEYS metrics of generated vs reference features ({layer: (N, F)}).

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
    the test split (first `max_reference_samples`) and its features, and what every metric needs
    of the real data alone (FID statistics, the test k-NN radii, the k-means cells of the
    training set and the test examples' distances to it, the test split's class frequencies and
    the classifier's accuracy on it): computed once per data set and extractor, then read from
    the file cache under cache_dir (`reference/`), so an evaluation computes only what depends
    on the samples."""

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
        self._memory: dict[str, dict] = {}

    def reference(self, name: str, compute: Callable[[], dict]) -> dict:
        """A model-independent quantity {key: tensor or number} of the real splits: from this
        object, the file cache (<cache_dir>/fidelity/reference/<test split>-<name>.pt), or
        computed now and cached. `name` must say everything else it depends on."""
        if name in self._memory:
            return self._memory[name]
        path = Path(self.features.cache_root) / "reference" / f"{self.test_name}-{name}.pt"
        value = None
        if path.is_file():
            try:
                value = torch.load(path, map_location="cpu", weights_only=True)
            except Exception:  # unreadable: computed again, and replaced
                value = None
        if value is None:
            value = compute()
            atomic_write(path, lambda tmp: torch.save(value, tmp))
        self._memory[name] = value
        return value

    def test_radii(self, k: int) -> torch.Tensor:
        """Each test example's distance to its k-th nearest other test example (density and
        coverage's real balls)."""
        layer = self.features.layers["fid"]
        ref = self.reference(
            f"radii-k{k}", lambda: {"radii": kth_neighbour_radius(self.test_features[layer], k)}
        )
        return ref["radii"]

    def test_classes(self) -> dict:
        """The classifier's predicted-class counts over the test split and its accuracy there."""
        labels = _first(self.datamodule.split("test")[1], len(self.test))

        def compute() -> dict:
            ckpt = load_classifier(self.extractor.weights_path)
            logits = self.test_features[self.features.layers["isc"]]
            k = logits.shape[1]
            counts = torch.bincount(logits.argmax(1), minlength=k).double()
            return {
                "counts": counts,
                "accuracy": classifier_accuracy(ckpt, self.test, labels),
            }

        return self.reference("classes", compute)

    def fidelity(self, generated: torch.Tensor, gen_features: dict | None = None, **kwargs) -> dict:
        """FIDELITY_KEYS (+ class counts with the classifier extractor) of `generated` (data
        space) against the test split; kwargs: those of fidelity_from_features."""
        features = self.features
        gen_features = features(generated) if gen_features is None else gen_features
        k = kwargs.get("density_coverage_k", 5)
        metrics = fidelity_from_features(
            gen_features,
            self.test_features,
            features.layers,
            ref_fid_statistics=reference_fid_statistics(
                features, self.test_features, self.test_name
            ),
            ref_radii=self.test_radii(k)
            if len(self.test_features[features.layers["fid"]]) > k
            else None,
            **kwargs,
        )
        if self.extractor.kind == "classifier":  # mode dropping, visible per class
            classes = self.test_classes()
            gen_logits = gen_features[features.layers["isc"]]
            metrics.update(class_coverage(gen_logits, classes["counts"]))
            metrics["extractor_test_accuracy"] = classes["accuracy"]
        return {
            **metrics,
            "fidelity_num_samples": len(generated),
            "fidelity_extractor": self.extractor.kind,
        }

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
        metrics["memorisation_num_samples"] = len(generated)
        if train is None:
            train = self.datamodule.split("train")[0]
        train = _first(train, max_train_samples)
        name = reference_cache_name(self.spec.name, "train", train, self.extractor)
        layer = self.features.layers["fid"]
        cells = kwargs.get("ct_cells", 10)
        kwargs = {k: v for k, v in kwargs.items() if k != "seed"}  # the cells' seed is fixed
        gen = (self.features(generated) if gen_features is None else gen_features)[layer]
        if torch.isfinite(gen).all():  # a diverged sampler's NaNs have no neighbours
            train_f = self.features.cached(train, name)[layer]
            test_f = self.test_features[layer]
            ref = self._train_reference(f"features-{name}-cells{cells}", test_f, train_f, cells)
            m = memorisation_metrics(gen, test_f, train_f, reference=ref, **kwargs)
            metrics.update(m)
        if pixel_space and self.spec.is_image:
            k = self.spec.num_levels
            test_p, train_p = pixels(self.test, k), pixels(train, k)
            ref = self._train_reference(f"pixels-{name}-cells{cells}", test_p, train_p, cells)
            m = memorisation_metrics(pixels(generated, k), test_p, train_p, reference=ref, **kwargs)
            metrics.update({f"{key}_pixels": value for key, value in m.items()})
        return metrics

    def _train_reference(
        self, name: str, test: torch.Tensor, train: torch.Tensor, cells: int
    ) -> TrainReference:
        value = self.reference(
            f"memorisation-{name}",
            lambda: train_reference(test, train, cells, REFERENCE_SEED).to_dict(),
        )
        return TrainReference(**value)


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
    memorisation_samples: int | None = None,
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
        m = memorisation_samples or len(generated)
        metrics.update(
            real.memorisation(
                generated[:m],
                gen_features={k: v[:m] for k, v in gen_features.items()},
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
    samples (the same noise seed as the main evaluation) and its samples/s, and its paired
    difference from the module's own sampler.

    Returns [{sampler (the family's label, e.g. "DDIM-10"), nfe, fid, fid_ci, fid_diff,
    fid_diff_ci, baseline, samples_per_s}]. fid_diff = this setting's FID minus the FID of the
    module's configured sampler (`baseline`, e.g. "DDIM-50") on the same initial noise; its
    interval resamples the same sample indices from both sets (a paired bootstrap), so the
    noise the two share cancels, which unpaired intervals cannot show. Only FID is computed per
    setting (bootstrap_resamples, ci_level, ci_method as in the main evaluation).
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
    mu, sigma = (torch.as_tensor(ref_stats[k]) for k in ("mu", "sigma"))

    def fid_of(g: torch.Tensor) -> float:
        stats = fid_features_to_statistics(g)
        return float(
            fid_statistics_to_metric(stats, ref_stats, verbose=False)[torch_fidelity.KEY_METRIC_FID]
        )

    base_g = real.features(generate(module, num_samples, batch_size, seed))[layer]
    base_fid, baseline = fid_of(base_g), module.sampling_cost()["sampler"]
    idx = resample_indices(len(base_g), bootstrap_resamples, seed) if bootstrap_resamples else None
    base_resamples = fid_of_resamples(base_g, mu, sigma, idx) if idx is not None else None
    points = []
    for setting in settings:
        configured = copy.deepcopy(module)
        configured.configure_sampler(str(setting["sampler"]), int(setting["steps"]))
        g = real.features(generate(configured, num_samples, batch_size, seed))[layer]
        fid = fid_of(g)
        ci = diff_ci = None
        if idx is not None:
            resampled = fid_of_resamples(g, mu, sigma, idx)
            ci = bootstrap_interval(resampled, fid, ci_level, ci_method, 0.0)
            diff_ci = bootstrap_interval(
                resampled - base_resamples, fid - base_fid, ci_level, ci_method
            )
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
                "fid_diff": fid - base_fid,
                "fid_diff_ci": diff_ci,
                "baseline": baseline,
                "samples_per_s": speed.get("samples_per_s"),
            }
        )
    return points


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


def floor_sets(datamodule, num_samples: int, memorisation_samples: int | None, seed: int) -> dict:
    """The real-data floor's sets.

    "fidelity": num_samples training examples from a seeded permutation (all of train when
    smaller): the fidelity metrics, whose bias depends on the sample count, of a perfect model at
    the models' sample count. "generated": the first m validation examples, m =
    memorisation_samples or num_samples (at most the split): real images never trained on,
    scored for memorisation against the same training set and test split as the models' samples
    (evaluate_samples), so the floor's copy fraction, C_T and authenticity are on the models'
    scale. The models score their first memorisation_samples samples the same way."""
    train = datamodule.split("train")[0]
    perm = torch.randperm(len(train), generator=torch.Generator().manual_seed(seed))
    val = datamodule.split("val")[0]
    return {
        "fidelity": train[perm[:num_samples]],
        "generated": val[: min(memorisation_samples or num_samples, len(val))],
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
    memorisation_samples: int | None = None,
    memorisation_pixels: bool = True,
    copy_percentile: float = 1.0,
    ct_cells: int = 10,
    ct_min_generated: int = 20,
    **fidelity_kwargs,
) -> dict:
    """Every sample metric for real examples in place of samples (floor_sets): what a perfect
    model scores. Arguments: those of evaluate_samples."""
    sets = floor_sets(datamodule, num_samples, memorisation_samples, seed)
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
