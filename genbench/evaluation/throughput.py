"""Sampling cost: samples per second after warm-up, with device synchronisation, and the
FLOPs one sample takes (PyTorch's counter, the one the training budget uses)."""

from __future__ import annotations

import time

import torch
from torch.utils.flop_counter import FlopCounterMode


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


# Samples the FLOP count draws: enough that a per-batch cost (none of the samplers has one) would
# show as a fraction, few enough to cost a fraction of a second at the largest NFE.
FLOP_COUNT_SAMPLES = 4


@torch.inference_mode()
def sampling_flops(module, seed: int) -> dict[str, float]:
    """{"sampling_flops": FLOPs per sample}: `module.sample` of FLOP_COUNT_SAMPLES samples under
    FlopCounterMode, divided by their number. The counter counts matrix products and
    convolutions (forward only here), so elementwise work (noise, the samplers' updates) is left
    out, as in the training budget's count. Its own generator: the timed samples are unchanged."""
    gen = torch.Generator(device=module.device).manual_seed(seed)
    with FlopCounterMode(display=False) as counter:
        module.sample(FLOP_COUNT_SAMPLES, generator=gen)
    return {"sampling_flops": counter.get_total_flops() / FLOP_COUNT_SAMPLES}
