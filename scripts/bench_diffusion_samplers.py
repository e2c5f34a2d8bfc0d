"""Diffusion speed/quality trade-off: samples/s and FID per sampler and number of steps.

    python scripts/bench_diffusion_samplers.py --ckpt RUN/checkpoints/best-....ckpt \\
        [--num-samples 1000] [--settings ddpm ddim:50 ddim:20 ddim:10]

Loads a trained diffusion checkpoint, switches only the sampler (configure_sampler), and
measures each setting the way the evaluation stage does (throughput after warm-up; FID/KID/IS/PR
against the test split, the same sample seed for every setting).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from genbench.core.checkpoints import load_checkpoint
from genbench.data import DigitsDataModule
from genbench.evaluation.fidelity import evaluate_fidelity
from genbench.evaluation.throughput import measure_throughput
from genbench.families.diffusion import Diffusion

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--ckpt", type=Path, required=True)
    p.add_argument("--num-samples", type=int, default=1000)
    p.add_argument(
        "--settings",
        nargs="*",
        default=["ddpm", "ddim:50", "ddim:20", "ddim:10"],
        help="sampler:steps (steps default to T)",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--throughput-samples", type=int, default=64)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    ckpt = load_checkpoint(a.ckpt)
    module = Diffusion(**ckpt["hyper_parameters"])
    module.load_state_dict(ckpt["state_dict"])
    module.eval()
    dm = DigitsDataModule()
    settings = [
        (name, int(steps) if steps else module.hparams.num_steps)
        for name, _, steps in (s.partition(":") for s in a.settings)
    ]
    print(f"checkpoint={a.ckpt} samples={a.num_samples} threads={a.threads}")
    print("| sampler | NFE | samples/s | FID | KID | IS | precision | recall |")
    print("|---|---|---|---|---|---|---|---|")
    for sampler, steps in settings:
        module.configure_sampler(sampler, steps)
        rate = measure_throughput(module, a.throughput_samples, a.throughput_samples)
        f = evaluate_fidelity(
            module,
            dm,
            num_samples=a.num_samples,
            seed=a.seed,
            cache_dir=Path.home() / ".cache" / "genbench",
        )
        cost = module.sampling_cost()
        print(
            f"| {cost['sampler']} | {cost['nfe']} | {rate['samples_per_s']:.3g} | "
            f"{f['fid']:.1f} | {f['kid_mean']:.0f} | {f['is_mean']:.2f} | "
            f"{f['precision']:.3f} | {f['recall']:.3f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
