"""Samples/second of every family's sampler at batch sizes 1, 64 and 512 on digits (or --dataset).

    make bench-sampling          (or: python scripts/bench_sampling.py --models vae arm)

Weights are freshly initialised: sampling cost does not depend on training for a fixed sampler
(NFE), so this needs no checkpoints. Throughput is measured after warm-up with device sync.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate

from genbench.evaluation.throughput import measure_throughput
from genbench.families.build import build_model

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    # The six families' default configs; variants (e.g. diffusion_ddpm: 1000 steps) via --models.
    models = ["vae", "arm", "flow", "diffusion", "gan", "ebm"]
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", nargs="*", default=models)
    p.add_argument("--dataset", default="digits")
    p.add_argument("--batch-sizes", nargs="*", type=int, default=[1, 64, 512])
    p.add_argument("--min-samples", type=int, default=8, help="at least this many per size")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    print(f"dataset={a.dataset} device={a.device} threads={a.threads}")
    print("| model | nfe | " + " | ".join(f"bs={b} samples/s" for b in a.batch_sizes) + " |")
    print("|---|---|" + "---|" * len(a.batch_sizes))
    with initialize_config_dir(version_base="1.3", config_dir=str(ROOT / "conf")):
        for name in a.models:
            cfg = compose("train", overrides=[f"model={name}", f"dataset={a.dataset}"])
            module = build_model(cfg.model, instantiate(cfg.dataset).spec).to(a.device).eval()
            rates = []
            for b in a.batch_sizes:
                r = measure_throughput(module, num_samples=max(b, a.min_samples), batch_size=b)
                rates.append(f"{r['samples_per_s']:.3g}")
            nfe = module.sampling_cost().get("nfe")
            print(f"| {name} | {nfe} | " + " | ".join(rates) + " |", flush=True)


if __name__ == "__main__":
    main()
