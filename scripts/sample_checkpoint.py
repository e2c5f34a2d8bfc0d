"""Draw samples from a run's checkpoint into a .npy (integer images, (N, C, H, W)), e.g. the
fixed samples `make bench-eval` times the sample metrics on.

    python scripts/sample_checkpoint.py RUN_DIR/checkpoints/best_stepXXXXXX.ckpt OUT.npy [N]

The model is built from the run's .hydra/config.yaml; batches of 500 are drawn with generators
seeded 0, 1, ... so the file is the same on every call.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf

from genbench.core.checkpoint_loading import load_checkpoint
from genbench.families.build import build_model


def main(ckpt: str, out: str, n: int = 2000, batch: int = 500) -> None:
    run_dir = Path(ckpt).resolve().parents[1]
    cfg = OmegaConf.load(run_dir / ".hydra" / "config.yaml")
    module = build_model(cfg.model, instantiate(cfg.dataset).spec)
    module.load_state_dict(load_checkpoint(Path(ckpt), module)["state_dict"])
    module.eval()
    with torch.no_grad():
        parts = [
            module.sample(min(batch, n - i), generator=torch.Generator().manual_seed(k))
            for k, i in enumerate(range(0, n, batch))
        ]
    np.save(out, torch.cat(parts).cpu().numpy())
    print(f"{n} samples -> {out}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], *(int(a) for a in sys.argv[3:4]))
