"""The real data an evaluation scores samples against, built once per evaluation and shared by
the sample metrics, the curves, memorisation and the floor.

A data module's real splits as the metrics see them: the extractor, one network, the test split
(its first `max_reference_samples`) and its features, the training split (its first
`max_train_samples`), and what every metric needs of the real data alone (FID statistics, the
test k-NN radii, the k-means cells of the training set and the test examples' distances to it,
the test split's class counts and the classifier's accuracy on it). Those are computed once per
data set and extractor, then read from the file cache under cache_dir (`fidelity/reference/`),
so an evaluation computes only what depends on the samples.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch
from torch_fidelity.metric_fid import fid_features_to_statistics
from torch_fidelity.utils import cache_lookup_one_recompute_on_miss

from genbench.core.atomic import atomic_write
from genbench.core.results import MEMORISATION_KEYS, PIXEL_MEMORISATION_KEYS
from genbench.core.settings import EvalSettings
from genbench.evaluation.classifier import classifier_accuracy, load_classifier
from genbench.evaluation.extractors import resolve_extractor
from genbench.evaluation.features import FeatureSet, reference_cache_name
from genbench.evaluation.memorisation import TrainReference, memorisation_metrics, train_reference
from genbench.evaluation.neighbours import kth_neighbour_radius

# The k-means cells of the training set are part of the reference: the same for every run and
# evaluation seed (so they are computed once per data set and cached).
REFERENCE_SEED = 0


def pixels(x: torch.Tensor, num_levels: int) -> torch.Tensor:
    """Images long (N, C, H, W) in [0, K) -> (N, C*H*W) float32 in [0, 1]: pixel vectors."""
    return x.flatten(1).float() / (num_levels - 1)


def first(x: torch.Tensor, max_samples: int | None) -> torch.Tensor:
    return x[:max_samples] if max_samples else x


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


class RealData:
    """The real splits of `datamodule` for the metrics of `settings` (see the module docstring);
    distances are computed on `device`."""

    def __init__(self, datamodule, settings: EvalSettings, device: torch.device | str = "cpu"):
        self.datamodule, self.settings = datamodule, settings
        self.spec = datamodule.spec
        self.device = torch.device(device)
        self.extractor = resolve_extractor(
            datamodule,
            settings.cache_dir,
            inception_download=settings.inception_download,
            inception_path=settings.inception_weights,
        )
        self.features = FeatureSet(
            self.extractor,
            device=device,
            batch_size=settings.fidelity_batch_size,
            cache_dir=settings.cache_dir,
        )
        self.layer = self.features.layers["fid"]
        self.test = first(datamodule.split("test")[0], settings.max_reference_samples)
        self.test_name = reference_cache_name(self.spec.name, "test", self.test, self.extractor)
        self.test_features = self.features.cached(self.test, self.test_name)
        self.fid_statistics = reference_fid_statistics(
            self.features, self.test_features, self.test_name
        )
        self._memory: dict[str, dict] = {}
        self._train: tuple[torch.Tensor, str] | None = None

    def reference(self, name: str, compute: Callable[[], dict]) -> dict:
        """A model-independent quantity {key: tensor or number} of the real splits: from this
        object, the file cache (<cache_dir>/fidelity/reference/<test split>-<name>.pt), or
        computed now and cached. `name` says everything else it depends on."""
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
        """Each test example's distance to its k-th nearest other one (density and coverage's
        real balls)."""
        compute = lambda: {"radii": kth_neighbour_radius(self.test_features[self.layer], k)}  # noqa: E731
        return self.reference(f"radii-k{k}", compute)["radii"]

    def test_classes(self) -> dict:
        """{"counts": the classifier's predicted-class counts over the test split (from the
        logits its features hold), "accuracy": its accuracy there}."""
        labels = first(self.datamodule.split("test")[1], len(self.test))

        def compute() -> dict:
            logits = self.test_features[self.features.layers["isc"]]
            ckpt = load_classifier(self.extractor.weights_path)
            return {
                "counts": torch.bincount(logits.argmax(1), minlength=logits.shape[1]).double(),
                "accuracy": classifier_accuracy(ckpt, self.test, labels),
            }

        return self.reference("classes", compute)

    @property
    def train(self) -> tuple[torch.Tensor, str]:
        """The training split memorisation compares with (its first max_train_samples) and the
        name its cached features and references go by."""
        if self._train is None:
            x = first(self.datamodule.split("train")[0], self.settings.max_train_samples)
            self._train = x, reference_cache_name(self.spec.name, "train", x, self.extractor)
        return self._train

    def memorisation(
        self, generated: torch.Tensor, gen_features: dict | None = None, pixel_space: bool = True
    ) -> dict:
        """MEMORISATION_KEYS of `generated` against the training split, in the extractor's
        feature space and, for images with `pixel_space`, in pixel space (keys ending _pixels;
        None otherwise); test-split distances calibrate them. Plus memorisation_num_samples."""
        s = self.settings
        metrics = dict.fromkeys(MEMORISATION_KEYS + PIXEL_MEMORISATION_KEYS)
        metrics["memorisation_num_samples"] = len(generated)
        options = dict(copy_percentile=s.copy_percentile, ct_min_generated=s.ct_min_generated)
        train, name = self.train
        gen = (self.features(generated) if gen_features is None else gen_features)[self.layer]
        if torch.isfinite(gen).all():  # a diverged sampler's NaNs have no neighbours
            train_f = self.features.cached(train, name)[self.layer].to(self.device)
            test_f = self.test_features[self.layer].to(self.device)
            ref = self._train_reference(f"features-{name}", test_f, train_f)
            gen = gen.to(self.device)
            metrics.update(memorisation_metrics(gen, test_f, train_f, ref, **options))
        if pixel_space and self.spec.is_image:
            k = self.spec.num_levels
            test_p, train_p = (pixels(x, k).to(self.device) for x in (self.test, train))
            ref = self._train_reference(f"pixels-{name}", test_p, train_p)
            gen_p = pixels(generated, k).to(self.device)
            m = memorisation_metrics(gen_p, test_p, train_p, ref, **options)
            metrics.update({f"{key}_pixels": value for key, value in m.items()})
        return metrics

    def _train_reference(self, name: str, test: torch.Tensor, train: torch.Tensor):
        cells = self.settings.ct_cells
        value = self.reference(
            f"memorisation-{name}-cells{cells}",
            lambda: train_reference(test, train, cells, REFERENCE_SEED).to_dict(),
        )
        return TrainReference(**value)
