"""Sampling throughput: samples per second after warm-up, with device synchronisation."""

from __future__ import annotations

import time

import torch


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@torch.inference_mode()
def measure_throughput(
    module, num_samples: int, batch_size: int, warmup_batches: int, seed: int
) -> dict[str, float]:
    """Time `num_samples` samples drawn in batches of `batch_size` on the module's device,
    after `warmup_batches` untimed batches (eval.throughput_samples, throughput_batch_size,
    throughput_warmup_batches); num_samples=0 measures nothing (a re-evaluation then keeps the
    earlier measurement)."""
    if num_samples <= 0:
        return {}
    device = module.device
    gen = torch.Generator(device=device).manual_seed(seed)
    for _ in range(warmup_batches):
        module.sample(min(batch_size, num_samples), generator=gen)
    _sync(device)
    start = time.perf_counter()
    done = 0
    while done < num_samples:
        b = min(batch_size, num_samples - done)
        module.sample(b, generator=gen)
        done += b
    _sync(device)
    elapsed = time.perf_counter() - start
    return {
        "samples_per_s": done / elapsed,
        "sampling_batch_size": batch_size,
        "sampling_time_s": elapsed,
    }
