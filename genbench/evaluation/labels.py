"""Class labels of samples from the data set's evaluation classifier (digits, MNIST-like data)."""

from __future__ import annotations

import os

import torch

from genbench.evaluation.classifier import build_classifier, load_classifier
from genbench.evaluation.extractors import default_kind, resolve_extractor


@torch.no_grad()
def classify(
    samples: torch.Tensor, datamodule, cache_dir: str | os.PathLike
) -> tuple[torch.Tensor, torch.Tensor] | None:
    """(predicted class (N,) long, its softmax probability (N,) float) of image samples long
    (N, C, H, W) in [0, K), or None where the data set has no classifier extractor."""
    # Only the data set's own classifier labels classes: a data set in Inception features has
    # none, and resolving Inception here (without eval.inception_weights) could only fail.
    kind = getattr(datamodule, "feature_extractor", None) or default_kind(datamodule.spec)
    if kind != "classifier":
        return None
    extractor = resolve_extractor(datamodule, cache_dir, inception_download=False)
    net, k = build_classifier(load_classifier(extractor.weights_path))
    probs = torch.softmax(net(samples.cpu().float() / (k - 1))[1], 1)
    confidence, label = probs.max(1)
    return label, confidence
