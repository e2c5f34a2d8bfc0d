"""Pictures of samples: a PNG grid for images, a scatter plot for points; and the same samples
beside their nearest training examples."""

from __future__ import annotations

import math
from pathlib import Path

import torch

from genbench.core.spec import DataSpec
from genbench.evaluation.neighbours import nearest


def save_samples(
    samples: torch.Tensor, spec: DataSpec, path: str | Path, reference: torch.Tensor | None = None
) -> Path:
    """Save samples (long (N, C, H, W) in [0, K) or float (N, 2)) as a PNG; return its path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    samples = samples.detach().cpu()
    if spec.is_image:
        from torchvision.utils import save_image

        images = samples.float() / (spec.num_levels - 1)
        save_image(
            images, path, nrow=int(math.ceil(math.sqrt(len(images)))), padding=1, pad_value=0.5
        )
        return path
    fig, ax = _figure()
    if reference is not None:
        ref = reference.cpu()
        ax.scatter(ref[:, 0], ref[:, 1], s=2, c="0.75", label="data (test)")
    finite = samples[torch.isfinite(samples).all(1)]
    ax.scatter(finite[:, 0], finite[:, 1], s=2, c="C0", label="samples")
    return _save_scatter(fig, ax, spec.name, path)


def save_nearest_neighbours(
    samples: torch.Tensor, train: torch.Tensor, spec: DataSpec, path: str | Path, k: int = 3
) -> Path:
    """Each sample beside its k nearest training examples (Euclidean, in pixel space for images).

    Images: a grid of rows [sample, its k neighbours, gap, sample, its k neighbours]: the samples
    in the first and (k + 3)-th columns, neighbours nearest first; images under 32 pixels high
    are enlarged (nearest-neighbour). Points: the training set in grey, the samples in colour,
    each joined to its k neighbours by lines. Returns the path.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    samples, train = samples.detach().cpu(), train.detach().cpu()
    if not spec.is_image:
        samples = samples[torch.isfinite(samples).all(1)]
        idx = nearest(samples, train, k)[1].cpu()
        from matplotlib.collections import LineCollection

        fig, ax = _figure()
        ax.scatter(train[:, 0], train[:, 1], s=2, c="0.75", label="data (train)")
        # One artist for every sample-neighbour segment (a Line2D each drew ~1 s per plot).
        ends = torch.stack([samples[:, None].expand(-1, idx.shape[1], -1), train[idx]], dim=2)
        ax.add_collection(LineCollection(ends.reshape(-1, 2, 2).numpy(), colors="C1", lw=0.6))
        ax.scatter(samples[:, 0], samples[:, 1], s=8, c="C0", label=f"samples ({k} nearest)")
        return _save_scatter(fig, ax, spec.name, path)
    from torchvision.utils import save_image

    def unit(x: torch.Tensor) -> torch.Tensor:
        return x.float() / (spec.num_levels - 1)

    idx = nearest(unit(samples).flatten(1), unit(train).flatten(1), k)[1].cpu()
    rows = [torch.cat([unit(s)[None], unit(train[i])]) for s, i in zip(samples, idx)]
    gap = torch.full_like(rows[0][:1], 0.5)
    if len(rows) % 2:
        rows.append(torch.full_like(rows[0], 0.5))
    tiles = torch.cat([torch.cat([a, gap, b]) for a, b in zip(rows[::2], rows[1::2])])
    if tiles.shape[-2] < 32:
        tiles = torch.nn.functional.interpolate(tiles, scale_factor=32 // tiles.shape[-2])
    save_image(tiles, path, nrow=2 * k + 3, padding=1, pad_value=1.0)
    return path


def _figure():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt.subplots(figsize=(4, 4), dpi=100)


def _save_scatter(fig, ax, title: str, path: Path) -> Path:
    import matplotlib.pyplot as plt

    lim = 4.5
    ax.set(xlim=(-lim, lim), ylim=(-lim, lim), aspect="equal", title=title)
    ax.legend(loc="upper right", fontsize=7, markerscale=3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
