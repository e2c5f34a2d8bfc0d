"""Reading Lightning checkpoints with one-line errors. The callbacks that write them (best,
last, atomic writes) are training/checkpoints.py."""

from __future__ import annotations

import pickle
import re
from pathlib import Path

import torch
from torch import nn


class CheckpointError(ValueError):
    """A checkpoint that cannot be read or does not fit the configured model."""


def run_dir_of(ckpt: str | Path) -> Path:
    """<run>/checkpoints/x.ckpt -> <run>; the run folder must hold .hydra/config.yaml."""
    ckpt = Path(ckpt).expanduser().resolve()
    if not ckpt.is_file():
        raise FileNotFoundError(f"checkpoint {str(ckpt)!r} does not exist")
    run_dir = ckpt.parent.parent if ckpt.parent.name == "checkpoints" else ckpt.parent
    if not (run_dir / ".hydra" / "config.yaml").is_file():
        raise FileNotFoundError(f"no {run_dir / '.hydra' / 'config.yaml'} next to {ckpt}")
    return run_dir


def load_checkpoint(path: str | Path, module: nn.Module | None = None) -> dict:
    """Read a Lightning checkpoint; with `module`, check its weights fit. One-line errors."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {str(path)!r} does not exist")
    try:
        # weights_only: tensors and plain containers only, so a checkpoint from elsewhere cannot
        # run code when it is opened (a pickle naming any other global is refused).
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        found = re.search(
            r"(?:unsupported GLOBAL|Unsupported global:?)\s+(?:GLOBAL\s+)?(\S+)", str(e)
        )
        refused = found.group(1) if found else ""
        raise CheckpointError(
            f"checkpoint {str(path)!r} holds Python objects other than tensors and plain "
            f"containers ({refused or 'unsupported global'}): refused"
        ) from e
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
