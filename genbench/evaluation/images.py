"""Pictures of samples: a PNG grid for images, a scatter plot for points."""

from __future__ import annotations

import math
from pathlib import Path

import torch

from genbench.core.spec import DataSpec


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
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4, 4), dpi=100)
    if reference is not None:
        ref = reference.cpu()
        ax.scatter(ref[:, 0], ref[:, 1], s=2, c="0.75", label="data (test)")
    finite = samples[torch.isfinite(samples).all(1)]
    ax.scatter(finite[:, 0], finite[:, 1], s=2, c="C0", label="samples")
    lim = 4.5
    ax.set(xlim=(-lim, lim), ylim=(-lim, lim), aspect="equal", title=spec.name)
    ax.legend(loc="upper right", fontsize=7, markerscale=3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
