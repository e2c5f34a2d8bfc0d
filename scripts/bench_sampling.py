"""Sampling speed: the ARM's cached vs naive sampler side by side, then every family's samples/s.

    make bench-sampling          (or: python scripts/bench_sampling.py --models vae arm)

1. The ARM (conf/model/arm.yaml) on digits at --arm-batch: the cached sampler (each activation
   computed once) and the naive one (the network over rows <= i for every element), which draw
   identical samples, timed as --arm-pairs interleaved pairs (the order alternates, so drifting
   machine load hits both alike) after one warm-up batch each; median and range of each, and
   the median and range of the per-pair ratio.
2. Every family of the model group (genbench.config.model_options(), i.e. what a benchmark
   sweeps) at batch sizes 1, 64 and 512, with its configured sampler and NFE.

Weights are freshly initialised: sampling cost does not depend on training for a fixed sampler
(NFE), so this needs no checkpoints. Throughput is measured the way evaluation measures it
(genbench.evaluation.throughput: after warm-up, with device sync). The load average is printed
before and after: on a shared machine the numbers are only as good as it was quiet.
"""

from __future__ import annotations

import argparse
import os
import statistics
from pathlib import Path

import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate

from genbench.config import model_options, register
from genbench.evaluation.throughput import measure_throughput
from genbench.families.build import build_model

ROOT = Path(__file__).resolve().parents[1]


def load() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.1f} (1 min) {five:.1f} (5 min) on {os.cpu_count()} CPUs"


def build(name: str, dataset: str, device: str):
    cfg = compose("train", overrides=[f"model={name}", f"dataset={dataset}"])
    return build_model(cfg.model, instantiate(cfg.dataset).spec).to(device).eval()


def samples_per_s(module, sampler: str, batch: int, warmup: int, seed: int) -> float:
    module.sampler = sampler
    r = measure_throughput(
        module, num_samples=batch, batch_size=batch, warmup_batches=warmup, seed=seed
    )
    return r["samples_per_s"]


def spread(values: list[float]) -> str:
    return f"{statistics.median(values):.4g} [{min(values):.4g}, {max(values):.4g}]"


def compare_arm_samplers(dataset: str, batch: int, pairs: int, device: str, seed: int) -> None:
    module = build("arm", dataset, device)
    gen = [torch.Generator(device=device).manual_seed(0) for _ in range(2)]
    same = torch.equal(module.sample_naive(16, gen[0]), module.sample_cached(16, gen[1]))
    rates: dict[str, list[float]] = {"naive": [], "cached": []}
    for sampler in rates:  # one warm-up batch each, untimed
        samples_per_s(module, sampler, batch, warmup=1, seed=seed)
    for i in range(pairs):
        order = ("naive", "cached") if i % 2 == 0 else ("cached", "naive")
        for sampler in order:
            rates[sampler].append(samples_per_s(module, sampler, batch, warmup=0, seed=seed))
    ratios = [c / n for c, n in zip(rates["cached"], rates["naive"], strict=True)]
    nfe = module.sampling_cost()["nfe"]
    print(
        f"ARM samplers on {dataset}, batch {batch}, {pairs} interleaved pairs, nfe {nfe}; "
        f"identical samples (16, same generator state): {same}"
    )
    print("| sampler | samples/s: median [min, max] |")
    print("|---|---|")
    for sampler, values in rates.items():
        print(f"| {sampler} | {spread(values)} |")
    print(f"| cached/naive (per pair) | {spread(ratios)} |", flush=True)


def family_table(models: list[str], dataset: str, sizes: list[int], least: int, device: str, ev):
    """`ev`: the evaluation settings (cfg.eval), whose warm-up and seed evaluation uses."""
    print(f"every family on {dataset}: samples/s (freshly initialised weights)")
    print("| model | sampler | nfe | " + " | ".join(f"bs={b} samples/s" for b in sizes) + " |")
    print("|---|---|---|" + "---|" * len(sizes))
    for name in models:
        module = build(name, dataset, device)
        rates = []
        for b in sizes:
            r = measure_throughput(
                module,
                num_samples=max(b, least),
                batch_size=b,
                warmup_batches=ev.throughput_warmup_batches,
                seed=ev.sample_seed,
            )
            rates.append(f"{r['samples_per_s']:.3g}")
        cost = module.sampling_cost()
        row = [name, cost.get("sampler", "-"), cost.get("nfe"), *rates]
        print("| " + " | ".join(str(v) for v in row) + " |", flush=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", nargs="*", help="default: every option of the model group")
    p.add_argument("--dataset", default="digits")
    p.add_argument("--batch-sizes", nargs="*", type=int, default=[1, 64, 512])
    p.add_argument("--min-samples", type=int, default=8, help="at least this many per size")
    p.add_argument("--arm-batch", type=int, default=256)
    p.add_argument("--arm-pairs", type=int, default=5, help="0 skips the ARM comparison")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    print(f"dataset={a.dataset} device={a.device} threads={a.threads}; {load()}")
    register()
    with initialize_config_dir(version_base="1.3", config_dir=str(ROOT / "conf")):
        ev = compose("train").eval  # model_options() reads the group from an initialised Hydra
        models = a.models or model_options()
        if a.arm_pairs > 0:
            compare_arm_samplers(a.dataset, a.arm_batch, a.arm_pairs, a.device, ev.sample_seed)
        family_table(models, a.dataset, a.batch_sizes, a.min_samples, a.device, ev)
    print(f"done; {load()}")


if __name__ == "__main__":
    main()
