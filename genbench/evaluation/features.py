"""Features of data-space samples through torch-fidelity's own feature extractors, extracted once
per evaluation, and the on-disk cache of a real split's features.

A real split's features go to torch-fidelity's file cache (its cache helpers, atomic saves) under a
name built from the data set, split, size, data hash and extractor weights hash, so they are
computed once and never reused after the data or the extractor's weights change.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import torch
from torch.utils.data import Dataset
from torch_fidelity.registry import FEATURE_EXTRACTORS_REGISTRY
from torch_fidelity.utils import (
    cache_lookup_group_recompute_all_on_any_miss,
    create_feature_extractor,
    get_featuresdict_from_dataset,
)

from genbench.core.hashing import tensor_hash
from genbench.evaluation.extractors import Extractor

# torch-fidelity's metric names: Inception Score, FID, KID, precision/recall.
METRICS = ("isc", "fid", "kid", "prc")


def safe_name(text: str) -> str:
    """A cache-file-safe version of a data set name."""
    return re.sub(r"[^A-Za-z0-9_.]+", "_", text)


class TensorSamples(Dataset):
    """A Dataset of one tensor, item i = x[i] (torch-fidelity wants tensors, not tuples)."""

    def __init__(self, x: torch.Tensor):
        self.x = x

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int) -> torch.Tensor:
        return self.x[i]


def reference_cache_name(name: str, split: str, x: torch.Tensor, extractor: Extractor) -> str:
    """torch-fidelity cache name of a real split: data, split, size, data and weights hash."""
    return (
        f"genbench-{safe_name(name)}-{split}{len(x)}-{tensor_hash(x)[:12]}-{extractor.cache_tag()}"
    )


def fidelity_cache_root(cache_dir: str | os.PathLike) -> Path:
    return Path(cache_dir).expanduser() / "fidelity"


def feature_layers(extractor: Extractor) -> dict[str, str]:
    """{torch-fidelity metric: the extractor's layer for it}, as torch-fidelity resolves them
    (e.g. InceptionV3: "2048" for fid/kid/prc, "logits_unbiased" for isc); no isc without logits."""
    cls = FEATURE_EXTRACTORS_REGISTRY[extractor.name]
    metrics = METRICS if extractor.has_logits else METRICS[1:]
    return {m: cls.get_default_feature_layer_for_metric(m) for m in metrics}


class FeatureSet:
    """One extractor network, built on first use: data-space samples -> {layer: (N, F) float}.

    Features come back on the CPU, as torch-fidelity returns them, extracted `batch_size` at a
    time (eval.fidelity_batch_size). `cached` keeps a real split's features in torch-fidelity's
    file cache under `cache_dir`/fidelity (eval.cache_dir).
    """

    def __init__(
        self,
        extractor: Extractor,
        *,
        device: torch.device | str = "cpu",
        batch_size: int,
        cache_dir: str | os.PathLike,
    ):
        self.extractor = extractor
        self.layers = feature_layers(extractor)
        self.cuda = torch.device(device).type == "cuda"
        self.batch_size = batch_size
        self.cache_root = str(fidelity_cache_root(cache_dir))
        self._net = None

    @property
    def net(self):
        if self._net is None:
            self._net = create_feature_extractor(
                self.extractor.name,
                sorted(set(self.layers.values())),
                cuda=self.cuda,
                feature_extractor_weights_path=self.extractor.weights_path,
                verbose=False,
            )
        return self._net

    def __call__(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """x: long (N, C, H, W) in [0, K) or float (N, D) -> {layer: (N, F)}."""
        return get_featuresdict_from_dataset(
            TensorSamples(self.extractor.prepare(x)),
            self.net,
            self.batch_size,
            self.cuda,
            save_cpu_ram=True,  # no DataLoader worker processes for in-memory tensors
            verbose=False,
        )

    def cache_kwargs(self, cache_name: str | None) -> dict:
        """The keyword arguments torch-fidelity's cache helpers read."""
        return {"cache": cache_name is not None, "cache_root": self.cache_root, "verbose": False}

    def cached(self, x: torch.Tensor, cache_name: str | None) -> dict[str, torch.Tensor]:
        """Features of a real split, read from the file cache when `cache_name` is there (files
        `<cache_name>-<extractor>-features-<layer>.pt`, as torch-fidelity names them)."""
        if cache_name is None:
            return self(x)
        return cache_lookup_group_recompute_all_on_any_miss(
            f"{cache_name}-{self.extractor.name}-features-",
            sorted(set(self.layers.values())),
            lambda: self(x),
            **self.cache_kwargs(cache_name),
        )
