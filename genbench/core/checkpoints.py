"""Reading Lightning checkpoints with one-line errors."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn


class CheckpointError(ValueError):
    """A checkpoint that cannot be read or does not fit the configured model."""


def load_checkpoint(path: str | Path, module: nn.Module | None = None) -> dict:
    """Read a Lightning checkpoint; with `module`, check its weights fit. One-line errors."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {str(path)!r} does not exist")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as e:  # truncated, not a zip/pickle, ...
        raise CheckpointError(
            f"checkpoint {str(path)!r} is unreadable or corrupt ({type(e).__name__})"
        ) from e
    if not isinstance(ckpt, dict) or "state_dict" not in ckpt:
        raise CheckpointError(
            f"checkpoint {str(path)!r} is not a Lightning checkpoint (no state_dict)"
        )
    if module is not None:
        own, theirs = module.state_dict(), ckpt["state_dict"]
        missing = sorted(set(own) - set(theirs))
        unexpected = sorted(set(theirs) - set(own))
        bad_shape = sorted(k for k in set(own) & set(theirs) if own[k].shape != theirs[k].shape)
        if missing or unexpected or bad_shape:
            example = (missing or unexpected or bad_shape)[0]
            raise CheckpointError(
                f"checkpoint {str(path)!r} does not match {type(module).__name__}: "
                f"{len(missing)} missing, {len(unexpected)} unexpected, {len(bad_shape)} "
                f"mis-shaped tensors (e.g. {example!r})"
            )
    return ckpt
