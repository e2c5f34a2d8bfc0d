"""Mode coverage on 8 gaussians: how many of the 8 modes a sampler covers, and how well.

The criterion of VEEGAN / PacGAN (Srivastava et al. 2017; Lin et al. 2018): a sample is
"high quality" if it lies within 3 standard deviations of its nearest mode centre; a mode is
covered if at least `min_fraction` (1%) of all samples are high-quality samples assigned to it
(PacGAN's 20 of 2500 is 0.8%; a uniform sampler over the 8 modes gives 12.5% per mode).
"""

from __future__ import annotations

import numpy as np
import torch

from genbench.data.toy2d import EIGHT_GAUSSIAN_CENTERS

EIGHT_GAUSSIAN_STD = 0.15


def mode_coverage(
    samples: torch.Tensor,
    centers: np.ndarray | torch.Tensor = EIGHT_GAUSSIAN_CENTERS,
    std: float = EIGHT_GAUSSIAN_STD,
    num_std: float = 3.0,
    min_fraction: float = 0.01,
) -> dict[str, float]:
    """samples (N, 2) -> {'modes_covered', 'high_quality_fraction'} (counts over N samples)."""
    x = samples.detach().double().cpu()
    c = torch.as_tensor(np.asarray(centers), dtype=torch.float64)
    finite = torch.isfinite(x).all(1)
    dist = torch.cdist(x[finite], c)  # (N', M)
    d_min, nearest = dist.min(1)
    good = d_min <= num_std * std
    counts = torch.bincount(nearest[good], minlength=len(c))
    n = len(x)
    return {
        "modes_covered": int((counts >= min_fraction * n).sum()),
        "high_quality_fraction": float(good.sum()) / n,
    }
