"""torch-fidelity's InceptionV3, the "inception-v3-compat" feature extractor: where its weights
file comes from (a given path, or torch hub's cache, downloading there when allowed, with a
one-line error otherwise) and the input it expects (uint8 RGB).
"""

from __future__ import annotations

import os
from pathlib import Path

import torch


def inception_hub_path() -> Path:
    """Where torch-fidelity's own download puts the InceptionV3 weights (torch hub's cache)."""
    from torch_fidelity.feature_extractor_inceptionv3 import URL_INCEPTION_V3

    return Path(torch.hub.get_dir()) / "checkpoints" / URL_INCEPTION_V3.rsplit("/", 1)[-1]


def inception_weights(path: str | os.PathLike | None, download: bool) -> Path:
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
