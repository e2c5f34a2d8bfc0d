"""NLL in bits/dim over a split, accumulated with torchmetrics so DDP reduction is by sum."""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.distributed as dist
from torch.utils.data import DataLoader, Subset
from torchmetrics import Metric

from genbench.core.atomic import atomic_write
from genbench.core.progress import Progress
from genbench.maths.distributions import bits_per_dim

# Per-example test bits/dim, in the test split's order, saved beside results.json.
PER_EXAMPLE_NLL = "test_nll_bpd.npy"


class BitsPerDim(Metric):
    """Mean bits/dim of per-example NLLs (nats) and the standard error of that mean."""

    full_state_update = False

    def __init__(self, num_dims: int, **kwargs):
        super().__init__(**kwargs)
        self.num_dims = num_dims
        self.add_state("total", torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("total_sq", torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("count", torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")

    def update(self, nll_nats: torch.Tensor) -> None:
        bpd = bits_per_dim(nll_nats.detach().double(), self.num_dims)
        self.total += bpd.sum()
        self.total_sq += (bpd**2).sum()
        self.count += bpd.numel()

    def compute(self) -> dict[str, float]:
        n = self.count.item()
        if n == 0:
            raise ValueError("BitsPerDim.compute() called before any update")
        mean = self.total / n
        var = (self.total_sq / n - mean**2).clamp(min=0) * n / max(n - 1, 1)
        return {"nll_bpd": mean.item(), "nll_bpd_stderr": math.sqrt(var.item() / n)}


def shard_for_rank(loader: DataLoader) -> DataLoader:
    """Under torch.distributed, this rank's share (every world_size-th example, no padding)."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return loader
    rank, world = dist.get_rank(), dist.get_world_size()
    subset = Subset(loader.dataset, range(rank, len(loader.dataset), world))
    return DataLoader(subset, batch_size=loader.batch_size, shuffle=False)


def save_array(path, values: np.ndarray) -> None:
    """np.save, atomically."""

    def write(tmp: str) -> None:
        with open(tmp, "wb") as f:
            np.save(f, values)

    atomic_write(path, write)


def _gather_in_order(values: torch.Tensor) -> torch.Tensor:
    """Per-example values of this rank's shard (every world_size-th example) -> all, in order."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return values
    shards: list = [None] * dist.get_world_size()
    dist.all_gather_object(shards, values.cpu())
    out = torch.empty(sum(len(v) for v in shards), dtype=values.dtype)
    for rank, v in enumerate(shards):
        out[rank :: len(shards)] = v
    return out


def evaluate_nll(module, loader, max_batches: int | None = None, seed: int = 0) -> dict:
    """Mean test bits/dim of `module.nll` over `loader` (every example, unless max_batches),
    its standard error, and the per-example bits/dim (key "per_example_bpd", a float64 CPU
    tensor in the loader's order: paired comparisons between families use it).

    The random draws of stochastic estimators (dequantisation noise, importance samples,
    timesteps, Hutchinson probes) come from the global generators seeded with `seed` (each
    rank with seed + rank), restored afterwards: the same checkpoint gets the same number in
    the run that trained it and in genbench-eval. Under DDP each rank scores its shard; the
    metric's sum states are all-reduced on compute.
    """
    rank = dist.get_rank() if dist.is_available() and dist.is_initialized() else 0
    devices = [module.device] if module.device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices), torch.inference_mode():
        torch.manual_seed(seed + rank)
        return _evaluate_nll(module, loader, max_batches)


def _evaluate_nll(module, loader, max_batches: int | None) -> dict:
    metric = BitsPerDim(module.spec.num_dims).to(module.device)
    per_example = []
    shard = shard_for_rank(loader)
    total = len(shard) if max_batches is None else min(max_batches, len(shard))
    progress = Progress("test NLL", total, "batches")
    for i, (x, y) in enumerate(shard):
        if max_batches is not None and i >= max_batches:
            break
        nll = module.nll((x.to(module.device), y.to(module.device)))
        metric.update(nll)
        per_example.append(bits_per_dim(nll.detach().double().cpu(), module.spec.num_dims))
        progress(i + 1)
    out = metric.compute()
    # An error shared by all examples (e.g. an estimated log Z) does not average out.
    shared = bits_per_dim(torch.tensor(module.shared_nll_stderr_nats()), module.spec.num_dims)
    out["nll_bpd_stderr"] = math.sqrt(out["nll_bpd_stderr"] ** 2 + shared.item() ** 2)
    out["per_example_bpd"] = _gather_in_order(torch.cat(per_example))
    return out
