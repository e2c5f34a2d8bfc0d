"""Wall time of the fidelity evaluation of a trained checkpoint, cold vs warm reference cache.

    python scripts/bench_eval.py --ckpt RUN/checkpoints/last.ckpt [--num-samples 1000]

Cold: an empty cache directory (reference features computed and cached). Warm: the same call
again (reference features read from the cache). Only the fidelity stage is timed (sampling,
features, metrics); the digits classifier ships with the package, so no training is included.
Also prints the real-data floor (train split vs test split) at the same sample size.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf

from genbench.evaluation.fidelity import evaluate_fidelity, real_data_floor
from genbench.evaluation.reevaluate import run_dir_of
from genbench.families.build import build_model


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--ckpt", type=Path, required=True)
    p.add_argument("--num-samples", type=int, default=1000)
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    torch.set_num_threads(args.threads)

    run_cfg = OmegaConf.load(run_dir_of(args.ckpt) / ".hydra" / "config.yaml")
    dm = instantiate(run_cfg.dataset)
    module = build_model(run_cfg.model, dm.spec)
    module.load_state_dict(
        torch.load(args.ckpt, map_location="cpu", weights_only=False)["state_dict"]
    )

    with tempfile.TemporaryDirectory() as cache:
        for label in ("cold", "warm"):
            start = time.perf_counter()
            m = evaluate_fidelity(module, dm, num_samples=args.num_samples, cache_dir=cache)
            print(f"{label}: {time.perf_counter() - start:.2f} s  {json.dumps(m)}", flush=True)
        start = time.perf_counter()
        floor = real_data_floor(dm, num_samples=args.num_samples, cache_dir=cache)
        print(f"floor (train vs test): {time.perf_counter() - start:.2f} s  {json.dumps(floor)}")


if __name__ == "__main__":
    main()
