"""FID, KID, IS and precision/recall through torch-fidelity, against the test split.

The reference split's features and FID statistics go to torch-fidelity's file cache under a
name built from the data set, split, size, data hash, extractor and weights hash, so they are
computed once and never reused after the data or the extractor's weights change.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
import torch_fidelity
from torch.utils.data import Dataset

from genbench.evaluation.extractors import (
    Extractor,
    build_classifier,
    load_classifier,
    resolve_extractor,
    safe_name,
    tensor_hash,
)

FIDELITY_KEYS = ("fid", "kid_mean", "kid_std", "is_mean", "is_std", "precision", "recall")
_FROM_TORCH_FIDELITY = {
    torch_fidelity.KEY_METRIC_FID: "fid",
    torch_fidelity.KEY_METRIC_KID_MEAN: "kid_mean",
    torch_fidelity.KEY_METRIC_KID_STD: "kid_std",
    torch_fidelity.KEY_METRIC_ISC_MEAN: "is_mean",
    torch_fidelity.KEY_METRIC_ISC_STD: "is_std",
    torch_fidelity.KEY_METRIC_PRECISION: "precision",
    torch_fidelity.KEY_METRIC_RECALL: "recall",
}


class TensorSamples(Dataset):
    """A Dataset of one tensor, item i = x[i] (torch-fidelity wants tensors, not tuples)."""

    def __init__(self, x: torch.Tensor):
        self.x = x

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int) -> torch.Tensor:
        return self.x[i]


def reference_cache_name(name: str, split: str, x: torch.Tensor, extractor: Extractor) -> str:
    """torch-fidelity cache name of a reference set: data, split, size, data and weights hash."""
    return (
        f"genbench-{safe_name(name)}-{split}{len(x)}-{tensor_hash(x)[:12]}-{extractor.cache_tag()}"
    )


def fidelity_cache_root(cache_dir: str | os.PathLike) -> Path:
    return Path(cache_dir).expanduser() / "fidelity"


def compute_fidelity(
    generated: torch.Tensor,
    reference: torch.Tensor,
    extractor: Extractor,
    *,
    reference_name: str | None = None,
    cache_dir: str | os.PathLike = "~/.cache/genbench",
    device: torch.device | str = "cpu",
    batch_size: int = 256,
    kid_subsets: int = 100,
    kid_subset_size: int = 1000,
    isc_splits: int = 10,
    prc_neighborhood: int = 3,
    seed: int = 0,
) -> dict:
    """FID, KID, IS and precision/recall of `generated` against `reference` (both data space).

    generated, reference: long (N, C, H, W) in [0, K) or float (N, D). The reference's features
    are cached under `reference_name` (see reference_cache_name) when given. KID subsets have
    min(kid_subset_size, N_generated, N_reference) examples; IS is null without logits.
    """
    n = min(len(generated), len(reference))
    if n < prc_neighborhood + 1:
        raise ValueError(f"fidelity metrics need > {prc_neighborhood} samples per set, got {n}")
    has_is = extractor.has_logits
    out = torch_fidelity.calculate_metrics(
        input1=TensorSamples(extractor.prepare(generated)),
        input2=TensorSamples(extractor.prepare(reference)),
        input2_cache_name=reference_name,
        cache_root=str(fidelity_cache_root(cache_dir)),
        cache=reference_name is not None,
        cuda=torch.device(device).type == "cuda",
        batch_size=batch_size,
        feature_extractor=extractor.name,
        feature_extractor_weights_path=extractor.weights_path,
        fid=True,
        kid=True,
        prc=True,
        isc=has_is,
        kid_subsets=kid_subsets,
        kid_subset_size=min(kid_subset_size, n),
        isc_splits=min(isc_splits, len(generated)),
        prc_neighborhood=prc_neighborhood,
        rng_seed=seed,
        save_cpu_ram=True,  # no DataLoader worker processes for in-memory tensors
        verbose=False,
    )
    metrics = dict.fromkeys(FIDELITY_KEYS)
    metrics.update(
        {ours: float(out[theirs]) for theirs, ours in _FROM_TORCH_FIDELITY.items() if theirs in out}
    )
    return metrics


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


def evaluate_fidelity(
    module,
    datamodule,
    *,
    num_samples: int = 1000,
    batch_size: int = 256,
    seed: int = 0,
    split: str = "test",
    cache_dir: str | os.PathLike = "~/.cache/genbench",
    inception_weights: str | None = None,
    inception_download: bool = True,
    max_reference_samples: int | None = None,
    **metric_kwargs,
) -> dict:
    """Fidelity metrics of `num_samples` samples of `module` against `split` of `datamodule`."""
    extractor = resolve_extractor(datamodule, cache_dir, inception_weights, inception_download)
    reference = _reference(datamodule, split, max_reference_samples)
    generated = generate(module, num_samples, batch_size, seed)
    metrics = compute_fidelity(
        generated,
        reference,
        extractor,
        reference_name=reference_cache_name(datamodule.spec.name, split, reference, extractor),
        cache_dir=cache_dir,
        device=module.device,
        batch_size=batch_size,
        seed=seed,
        **metric_kwargs,
    )
    if extractor.kind == "classifier":  # mode dropping, visible per class
        metrics.update(class_coverage(generated, reference, extractor))
    return {**metrics, "fidelity_num_samples": num_samples, "fidelity_extractor": extractor.kind}


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


def real_data_floor(
    datamodule,
    *,
    num_samples: int = 1000,
    batch_size: int = 256,
    seed: int = 0,
    cache_dir: str | os.PathLike = "~/.cache/genbench",
    inception_weights: str | None = None,
    inception_download: bool = True,
    max_reference_samples: int | None = None,
    device: str = "cpu",
    **metric_kwargs,
) -> dict:
    """The same metrics for `num_samples` training examples against the test split: what a
    perfect model would score at that sample size (all of train when it is smaller)."""
    extractor = resolve_extractor(datamodule, cache_dir, inception_weights, inception_download)
    reference = _reference(datamodule, "test", max_reference_samples)
    x_train = datamodule.split("train")[0]
    if num_samples < len(x_train):
        g = torch.Generator().manual_seed(seed)
        x_train = x_train[torch.randperm(len(x_train), generator=g)[:num_samples]]
    metrics = compute_fidelity(
        x_train,
        reference,
        extractor,
        reference_name=reference_cache_name(datamodule.spec.name, "test", reference, extractor),
        cache_dir=cache_dir,
        device=device,
        batch_size=batch_size,
        seed=seed,
        **metric_kwargs,
    )
    return {**metrics, "fidelity_num_samples": len(x_train), "fidelity_extractor": extractor.kind}


def _reference(datamodule, split: str, max_samples: int | None) -> torch.Tensor:
    x = datamodule.split(split)[0]
    return x[:max_samples] if max_samples else x
