"""Feature extractors for the fidelity metrics, registered with torch-fidelity by name
(`register_extractors`, called by `resolve_extractor`).

- "inception-v3-compat": torch-fidelity's own InceptionV3, for natural images (uint8 RGB input).
- "genbench-classifier": a small CNN trained on the data set's training split (digits, MNIST,
  Fashion-MNIST); penultimate features for FID/KID/PR, logits for IS.
- "genbench-coords": the raw coordinates of 2-D points (no logits: IS is undefined).

`resolve_extractor(datamodule, ...)` picks one from the data module's `feature_extractor` and
returns what the fidelity code needs: the registered name, the weights file and its hash (part of
every cache key), and how to turn data-space samples into the extractor's input. The classifier
itself is in `classifier.py`, InceptionV3's weights and input in `inception.py`.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass

import torch
from torch_fidelity.feature_extractor_base import FeatureExtractorBase
from torch_fidelity.registry import FEATURE_EXTRACTORS_REGISTRY, register_feature_extractor

from genbench.core.hashing import file_hash
from genbench.evaluation.classifier import (
    build_classifier,
    classifier_hash,
    classifier_weights,
    load_classifier,
    to_unit,
)
from genbench.evaluation.inception import inception_weights, to_inception_input

KINDS = ("inception", "classifier", "coords")
INCEPTION_NAME = "inception-v3-compat"
CLASSIFIER_NAME = "genbench-classifier"
COORDS_NAME = "genbench-coords"


# --- torch-fidelity feature extractors -------------------------------------------------------


class _Counting:
    """Counts the examples an extractor class has processed (tests use it to prove cache hits)."""

    examples_seen = 0

    def _count(self, x: torch.Tensor) -> None:
        type(self).examples_seen += len(x)


class ClassifierFeatureExtractor(_Counting, FeatureExtractorBase):
    """SmallCNN features: "penultimate" (FID, KID, PR) and "logits" (IS); input long levels."""

    def __init__(self, name, features_list, feature_extractor_weights_path=None, **kwargs):
        super().__init__(name, features_list)
        if feature_extractor_weights_path is None:
            raise ValueError(f"{name} needs feature_extractor_weights_path")
        self.net, self.num_levels = build_classifier(
            load_classifier(feature_extractor_weights_path)
        )

    @staticmethod
    def get_provided_features_list():
        return ("penultimate", "logits")

    @staticmethod
    def get_default_feature_layer_for_metric(metric):
        return "logits" if metric == "isc" else "penultimate"

    @staticmethod
    def can_be_compiled():
        return False

    def forward(self, x):
        self._count(x)
        features, logits = self.net(to_unit(x, self.num_levels))
        out = {"penultimate": features, "logits": logits}
        return tuple(out[k] for k in self.features_list)


class CoordsFeatureExtractor(_Counting, FeatureExtractorBase):
    """The identity on points: feature "coords" is the (B, D) float input itself."""

    def __init__(self, name, features_list, **kwargs):
        super().__init__(name, features_list)

    @staticmethod
    def get_provided_features_list():
        return ("coords",)

    @staticmethod
    def get_default_feature_layer_for_metric(metric):
        return "coords"

    @staticmethod
    def can_be_compiled():
        return False

    def forward(self, x):
        self._count(x)
        return (x.float(),)


GENBENCH_EXTRACTORS = {
    CLASSIFIER_NAME: ClassifierFeatureExtractor,
    COORDS_NAME: CoordsFeatureExtractor,
}


def register_extractors() -> None:
    """Register genbench's extractors with torch-fidelity by name; safe to call again.

    The one place genbench touches torch-fidelity's registry (resolve_extractor calls it), so
    importing this module changes nothing.
    """
    for name, cls in GENBENCH_EXTRACTORS.items():
        if name not in FEATURE_EXTRACTORS_REGISTRY:
            register_feature_extractor(name, cls)


# --- the resolved extractor ------------------------------------------------------------------


@dataclass(frozen=True)
class Extractor:
    """A feature extractor as torch-fidelity sees it, plus the data-space -> input mapping."""

    kind: str  # "inception" | "classifier" | "coords"
    name: str  # the torch-fidelity registry name
    weights_path: str | None
    weights_hash: str
    num_levels: int | None = None

    @property
    def has_logits(self) -> bool:
        """Whether IS is defined (class logits exist)."""
        return self.kind != "coords"

    def prepare(self, x: torch.Tensor) -> torch.Tensor:
        """Data-space samples (long images in [0, K) or float points) -> the extractor's input."""
        x = x.detach().cpu()
        if self.kind == "inception":
            return to_inception_input(x, self.num_levels)
        if self.kind == "coords":
            return x.float()
        return x.long()

    def cache_tag(self) -> str:
        return f"{self.kind}-{self.weights_hash[:16]}"


def default_kind(spec) -> str:
    return "inception" if spec.is_image else "coords"


def resolve_extractor(
    datamodule,
    cache_dir: str | os.PathLike,
    *,
    inception_download: bool,
    inception_path: str | os.PathLike | None = None,
) -> Extractor:
    """The extractor named by `datamodule.feature_extractor` (or the default for its data kind).

    cache_dir, inception_download, inception_path: eval.cache_dir (first-use classifiers),
    eval.inception_download and eval.inception_weights (see inception.inception_weights)."""
    register_extractors()
    spec = datamodule.spec
    kind = getattr(datamodule, "feature_extractor", None) or default_kind(spec)
    if kind not in KINDS:
        raise ValueError(f"dataset.feature_extractor={kind!r}; valid: {list(KINDS)}")
    if kind == "coords":
        if spec.is_image:
            raise ValueError(f"feature_extractor=coords is for points, {spec.name} is images")
        return Extractor("coords", COORDS_NAME, None, hashlib.sha256(b"coords-v1").hexdigest())
    if not spec.is_image:
        raise ValueError(f"feature_extractor={kind} needs images; {spec.name} is points")
    if kind == "classifier":
        path = classifier_weights(datamodule, cache_dir)
        h = classifier_hash(load_classifier(path))
        return Extractor("classifier", CLASSIFIER_NAME, str(path), h, spec.num_levels)
    path = inception_weights(inception_path, inception_download)
    return Extractor("inception", INCEPTION_NAME, str(path), file_hash(path), spec.num_levels)
