"""Feature extractors for the fidelity metrics, registered with torch-fidelity by name
(`register_extractors`, called by `resolve_extractor`).

- "inception-v3-compat": torch-fidelity's own InceptionV3, for natural images (uint8 RGB input).
- "genbench-classifier": a small CNN trained on the data set's training split (digits, MNIST,
  Fashion-MNIST); penultimate features for FID/KID/PR, logits for IS.
- "genbench-coords": the raw coordinates of 2-D points (no logits: IS is undefined).

`resolve_extractor(datamodule, ...)` picks one from the data module's `feature_extractor` and
returns what the fidelity code needs: the registered name, the weights file and its hash (part of
every cache key), and how to turn data-space samples into the extractor's input.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torch_fidelity.feature_extractor_base import FeatureExtractorBase
from torch_fidelity.registry import FEATURE_EXTRACTORS_REGISTRY, register_feature_extractor

log = logging.getLogger(__name__)

ASSETS = Path(__file__).resolve().parents[1] / "assets"
KINDS = ("inception", "classifier", "coords")
INCEPTION_NAME = "inception-v3-compat"
CLASSIFIER_NAME = "genbench-classifier"
COORDS_NAME = "genbench-coords"


# --- hashing --------------------------------------------------------------------------------


def tensor_hash(x: torch.Tensor) -> str:
    """sha256 of a tensor's shape and bytes (integer levels in [0, 256) hashed as uint8)."""
    x = x.detach().cpu().contiguous()
    if not x.is_floating_point() and x.numel() and x.min() >= 0 and x.max() < 256:
        x = x.to(torch.uint8)
    h = hashlib.sha256(f"{tuple(x.shape)}".encode())
    h.update(x.numpy().tobytes())
    return h.hexdigest()


def state_hash(arch: dict, state_dict: dict[str, torch.Tensor]) -> str:
    """sha256 of an architecture dict and the weights' bytes, independent of the file format."""
    h = hashlib.sha256(json.dumps(arch, sort_keys=True).encode())
    for k in sorted(state_dict):
        h.update(k.encode())
        h.update(state_dict[k].detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


_FILE_HASHES: dict[tuple[str, int, int], str] = {}


def file_hash(path: str | os.PathLike) -> str:
    """sha256 of a file's bytes, memoised by (path, size, mtime)."""
    st = os.stat(path)
    key = (str(Path(path).resolve()), st.st_size, st.st_mtime_ns)
    if key not in _FILE_HASHES:
        h = hashlib.sha256()
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        _FILE_HASHES[key] = h.hexdigest()
    return _FILE_HASHES[key]


# --- the small classifier -------------------------------------------------------------------


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


def _to_unit(x: torch.Tensor, num_levels: int) -> torch.Tensor:
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
    xu = _to_unit(x, num_levels)
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
    return (net(_to_unit(x, k))[1].argmax(1) == y).float().mean().item()


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
        features, logits = self.net(_to_unit(x, self.num_levels))
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


# --- InceptionV3 weights ---------------------------------------------------------------------


def inception_hub_path() -> Path:
    """Where torch-fidelity's own download puts the InceptionV3 weights (torch hub's cache)."""
    from torch_fidelity.feature_extractor_inceptionv3 import URL_INCEPTION_V3

    return Path(torch.hub.get_dir()) / "checkpoints" / URL_INCEPTION_V3.rsplit("/", 1)[-1]


def inception_weights(path: str | os.PathLike | None = None, download: bool = True) -> Path:
    """The InceptionV3 weights file: `path` if given, else torch-fidelity's cache (downloading
    there when allowed); a one-line FileNotFoundError naming the file and the place otherwise."""
    from torch_fidelity.feature_extractor_inceptionv3 import URL_INCEPTION_V3

    if path:
        p = Path(path).expanduser()
        if not p.is_file():
            raise FileNotFoundError(f"eval.inception_weights={str(p)!r} does not exist")
        return p
    hub = inception_hub_path()
    hint = (
        f"InceptionV3 weights not found: put {URL_INCEPTION_V3} at {hub} "
        f"or set eval.inception_weights=/path/to/{hub.name}"
    )
    if hub.is_file():
        return hub
    if not download:
        raise FileNotFoundError(hint)
    try:
        hub.parent.mkdir(parents=True, exist_ok=True)
        torch.hub.download_url_to_file(URL_INCEPTION_V3, str(hub), progress=False)
    except Exception as e:  # no network, proxy, HTTP error: all end in the same instruction
        raise FileNotFoundError(f"{hint} (download failed: {type(e).__name__})") from e
    return hub


def to_inception_input(x: torch.Tensor, num_levels: int) -> torch.Tensor:
    """(N, C, H, W) levels in [0, K) -> (N, 3, H, W) uint8 in [0, 255], as InceptionV3 expects."""
    if num_levels != 256:
        x = torch.round(x.float() * (255 / (num_levels - 1)))
    x = x.to(torch.uint8)
    return x.expand(-1, 3, -1, -1).contiguous() if x.shape[1] == 1 else x


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
    cache_dir: str | os.PathLike = "~/.cache/genbench",
    inception_path: str | os.PathLike | None = None,
    inception_download: bool = True,
) -> Extractor:
    """The extractor named by `datamodule.feature_extractor` (or the default for its data kind)."""
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


def safe_name(text: str) -> str:
    """A cache-file-safe version of a data set name."""
    return re.sub(r"[^A-Za-z0-9_.]+", "_", text)
