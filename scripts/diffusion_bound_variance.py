"""How precisely a diffusion checkpoint's test bound is estimated, per way of drawing timesteps:
the per-image spread between two independent draws and across images, and the standard error
over the whole test split that each number of sampled steps would give.

    python scripts/diffusion_bound_variance.py --ckpt RUN/checkpoints/best_step*.ckpt \\
        [--images 512] [--proposals uniform vlb] [--steps 10 50]

For each (proposal, M): every image's bound (bits/dim) is estimated twice with independent
draws; within-image variance = mean((a - b)^2) / 2 (the estimator's own noise at M steps),
between-image variance = var((a + b) / 2) - within / 2 (what the images themselves differ by);
the standard error over N test images is sqrt((between + within) / N). Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import math
import time

import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf

from genbench.core.checkpoint_loading import load_checkpoint
from genbench.evaluation.reevaluate import run_dir_of
from genbench.families.build import build_model


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--ckpt", required=True)
    p.add_argument("--images", type=int, default=512)
    p.add_argument("--proposals", nargs="+", default=["uniform", "vlb"])
    p.add_argument("--steps", nargs="+", type=int, default=[10, 50])
    p.add_argument("--test-size", type=int, default=10_000)
    p.add_argument("--threads", type=int, default=2)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    cfg = OmegaConf.load(run_dir_of(a.ckpt) / ".hydra" / "config.yaml")
    dm = instantiate(cfg.dataset)
    module = build_model(cfg.model, dm.spec)
    module.load_state_dict(load_checkpoint(a.ckpt, module)["state_dict"])
    module.eval()
    x = dm.split("test")[0][: a.images]
    print(f"checkpoint {a.ckpt}: {a.images} test images, two draws each")
    print(
        "| proposal | steps M | network calls / image | mean bits/dim | within-image sd | "
        "between-image sd | SE over the test split | s / image |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for proposal in a.proposals:
        for m in a.steps:
            torch.manual_seed(0)
            start = time.perf_counter()
            with torch.inference_mode():
                draws = [
                    torch.cat(
                        [
                            module.nats_to_bpd(module.bound_terms((xb, None), m, proposal)["total"])
                            for xb in x.split(128)
                        ]
                    ).double()
                    for _ in range(2)
                ]
            per_image = (time.perf_counter() - start) / (2 * len(x))
            within = float(((draws[0] - draws[1]) ** 2).mean() / 2)
            between = max(float(((draws[0] + draws[1]) / 2).var()) - within / 2, 0.0)
            se = math.sqrt((between + within) / a.test_size)
            calls = m + (1 if proposal == "vlb" else 0)
            print(
                f"| {proposal} | {m} | {calls} | {float(torch.cat(draws).mean()):.3f} | "
                f"{math.sqrt(within):.3f} | {math.sqrt(between):.3f} | {se:.4f} | "
                f"{per_image:.3f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
