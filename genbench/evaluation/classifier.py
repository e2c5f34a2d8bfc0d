"""The small CNN classifier behind the "genbench-classifier" feature extractor: its network, its
deterministic training, its checkpoint files, and `classifier_weights`, which finds the weights for
a data module (shipped in genbench/assets/, cached, or trained now on first use).
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from genbench.core.hashing import state_hash, tensor_hash

log = logging.getLogger(__name__)

ASSETS = Path(__file__).resolve().parents[1] / "assets"


class SmallCNN(nn.Module):
    """Three 3x3 convs (two with stride 2), 2x2 average pool, a ReLU feature layer and logits."""

    def __init__(
        self, in_channels: int = 1, num_classes: int = 10, width: int = 16, feature_dim: int = 64
    ):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(in_channels, width, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(width, 2 * width, 3, stride=2, padding=1),
            nn.ReLU(),
            nn.Conv2d(2 * width, 2 * width, 3, stride=2, padding=1),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(2),
            nn.Flatten(),
            nn.Linear(8 * width, feature_dim),
            nn.ReLU(),
        )
        self.head = nn.Linear(feature_dim, num_classes)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x: (B, C, H, W) float in [0, 1] -> (features (B, F), logits (B, num_classes))."""
        features = self.body(x)
        return features, self.head(features)


def to_unit(x: torch.Tensor, num_levels: int) -> torch.Tensor:
    """Levels in [0, K) -> float in [0, 1], the classifier's input."""
    return x.float() / (num_levels - 1)


def _shift(x: torch.Tensor, gen: torch.Generator, max_shift: int) -> torch.Tensor:
    """Random translation by up to `max_shift` pixels (zero padding), drawn from `gen`."""
    if max_shift == 0:
        return x
    b, _, h, w = x.shape
    p = max_shift
    padded = F.pad(x, (p, p, p, p))
    dy, dx = torch.randint(0, 2 * p + 1, (2, b), generator=gen)
    rows = (dy[:, None] + torch.arange(h))[:, None, :, None].expand(-1, x.shape[1], -1, w + 2 * p)
    out = padded.gather(2, rows)
    cols = (dx[:, None] + torch.arange(w))[:, None, None, :].expand(-1, x.shape[1], h, -1)
    return out.gather(3, cols)


def train_classifier(
    x: torch.Tensor,
    y: torch.Tensor,
    num_levels: int,
    *,
    seed: int = 0,
    epochs: int = 80,
    batch_size: int = 64,
    lr: float = 3e-3,
    weight_decay: float = 0.0,
    max_shift: int = 1,
    width: int = 32,
    feature_dim: int = 64,
) -> dict:
    """Train a SmallCNN on (x long (N, C, H, W) in [0, K), y long (N,)), deterministically on CPU.

    Runs single-threaded with seeded shuffling and augmentation, so the same inputs give the same
    bits. Returns the checkpoint dict {"arch", "state_dict", "meta"} that `save_classifier` writes.
    """
    if (y < 0).any():
        raise ValueError("the classifier feature extractor needs class labels for every example")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    # Its own RNG state and autograd on: a first use can come inside a run's validation (the
    # validation FID), which runs in inference mode and must not reseed the run's global RNG.
    with torch.random.fork_rng(devices=[]), torch.inference_mode(False), torch.enable_grad():
        try:
            return _train_classifier(
                x.clone(),
                y.clone(),
                num_levels,
                epochs,
                seed,
                batch_size,
                lr,
                weight_decay,
                max_shift,
                width,
                feature_dim,
            )
        finally:
            torch.set_num_threads(threads)


def _train_classifier(
    x, y, num_levels, epochs, seed, batch_size, lr, weight_decay, max_shift, width, feature_dim
) -> dict:
    torch.manual_seed(seed)
    arch = {
        "in_channels": int(x.shape[1]),
        "num_classes": int(y.max()) + 1,
        "width": width,
        "feature_dim": feature_dim,
    }
    net = SmallCNN(**arch)
    opt = torch.optim.Adam(net.parameters(), lr=lr, weight_decay=weight_decay)
    steps = epochs * -(-len(x) // batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps)
    gen = torch.Generator().manual_seed(seed)
    xu = to_unit(x, num_levels)
    net.train()
    for _ in range(epochs):
        perm = torch.randperm(len(x), generator=gen)
        for i in range(0, len(x), batch_size):
            idx = perm[i : i + batch_size]
            _, logits = net(_shift(xu[idx], gen, max_shift))
            loss = F.cross_entropy(logits, y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
    net.eval()
    arch["num_levels"] = int(num_levels)
    meta = {"seed": seed, "epochs": epochs, "train_data_hash": tensor_hash(x), "num_train": len(x)}
    return {"arch": arch, "state_dict": net.state_dict(), "meta": meta}


def default_epochs(num_train: int) -> int:
    """Training epochs of a data set's classifier: 80 for small sets (digits' 1000 images),
    8 beyond 5000 (MNIST's 55k: 99.1% test accuracy; 3 epochs gave 98.5%)."""
    return 80 if num_train <= 5000 else 8


def build_classifier(ckpt: dict) -> tuple[SmallCNN, int]:
    """(network in eval mode, num_levels) from a checkpoint dict."""
    arch = dict(ckpt["arch"])
    num_levels = arch.pop("num_levels")
    net = SmallCNN(**arch)
    net.load_state_dict(ckpt["state_dict"])
    return net.eval().requires_grad_(False), num_levels


@torch.no_grad()
def classifier_accuracy(ckpt: dict, x: torch.Tensor, y: torch.Tensor) -> float:
    net, k = build_classifier(ckpt)
    return (net(to_unit(x, k))[1].argmax(1) == y).float().mean().item()


def classifier_hash(ckpt: dict) -> str:
    return state_hash(ckpt["arch"], ckpt["state_dict"])


def save_classifier(ckpt: dict, path: str | os.PathLike) -> None:
    """Atomic save (a temporary file and os.replace), so concurrent first uses never read half."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    torch.save(ckpt, tmp)
    os.replace(tmp, path)


def load_classifier(path: str | os.PathLike) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)


def classifier_weights(datamodule, cache_dir: str | os.PathLike) -> Path:
    """The classifier weights file for this data module: shipped, cached, or trained now.

    A shipped asset (genbench/assets/<name>_classifier.pt) is used when it was trained on this
    exact training split; otherwise the classifier is trained on first use and cached under
    `cache_dir`/classifiers, keyed by the training split's hash.
    """
    spec = datamodule.spec
    x, y = datamodule.split("train")
    train_hash = tensor_hash(x)
    shipped = ASSETS / f"{spec.name}_classifier.pt"
    if shipped.is_file() and load_classifier(shipped)["meta"]["train_data_hash"] == train_hash:
        return shipped
    cached = Path(cache_dir).expanduser() / "classifiers" / f"{spec.name}-{train_hash[:16]}.pt"
    if not cached.is_file():
        log.info(
            "training the %s feature classifier on %d examples -> %s", spec.name, len(x), cached
        )
        start = time.perf_counter()
        ckpt = train_classifier(x, y, spec.num_levels, epochs=default_epochs(len(x)))
        ckpt["meta"]["train_time_s"] = time.perf_counter() - start
        save_classifier(ckpt, cached)
    return cached
