"""NLL in bits/dim over a split, accumulated with torchmetrics so DDP reduction is by sum."""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.distributed as dist
from torch.utils.data import DataLoader
from torchmetrics import Metric

from genbench.core.atomic import atomic_write
from genbench.core.loop_progress import Progress
from genbench.core.seeds import derive_seed
from genbench.maths.distributions import bits_per_dim

# Per-example test bits/dim, and the test-split index of each, saved beside results.json.
PER_EXAMPLE_NLL = "test_nll_bpd.npy"
PER_EXAMPLE_INDEX = "test_nll_index.npy"


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


def _rank_world() -> tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def save_array(path, values: np.ndarray) -> None:
    """np.save, atomically."""

    def write(tmp: str) -> None:
        with open(tmp, "wb") as f:
            np.save(f, values)

    atomic_write(path, write)


def _gather_batches(mine: list[tuple[int, torch.Tensor]]) -> torch.Tensor:
    """Per-example values of this rank's batches [(batch index, values)] -> every rank's, in the
    loader's order."""
    if _rank_world()[1] > 1:
        shards: list = [None] * dist.get_world_size()
        dist.all_gather_object(shards, [(b, v.cpu()) for b, v in mine])
        mine = [item for shard in shards for item in shard]
    return torch.cat([v for _, v in sorted(mine, key=lambda item: item[0])])


def evaluate_nll(module, loader: DataLoader, seed: int) -> dict:
    """Mean bits/dim of `module.nll` over every example of `loader`, its standard error, and
    the per-example bits/dim (key "per_example_bpd", a float64 CPU tensor in the loader's order:
    paired comparisons between families use it).

    The random draws of stochastic estimators (dequantisation noise, importance samples,
    timesteps, Hutchinson probes) in batch b come from the global generators seeded with
    derive_seed(seed, b), restored afterwards; a term shared by every example (the EBM's log Z)
    from module.begin_nll_pass(seed). Under DDP rank r scores batches r, r + W, ... and the
    metric's sum states are all-reduced: a batch draws the same noise whichever device scores
    it, so any number of devices gives the one-device result, and the same checkpoint gets the
    same number in the run that trained it and in genbench-eval.
    """
    devices = [module.device] if module.device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices), torch.inference_mode():
        module.begin_nll_pass(seed)
        return _evaluate_nll(module, loader, seed)


def _evaluate_nll(module, loader: DataLoader, seed: int) -> dict:
    rank, world = _rank_world()
    metric = BitsPerDim(module.spec.num_dims).to(module.device)
    mine: list[tuple[int, torch.Tensor]] = []
    progress = Progress("test NLL", len(range(rank, len(loader), world)), "batches")
    for b, (x, y) in enumerate(loader):
        if b % world != rank:
            continue
        torch.manual_seed(derive_seed(seed, b))
        nll = module.nll((x.to(module.device), y.to(module.device)))
        metric.update(nll)
        mine.append((b, bits_per_dim(nll.detach().double().cpu(), module.spec.num_dims)))
        progress(len(mine))
    out = metric.compute()
    # An error shared by all examples (e.g. an estimated log Z) does not average out.
    shared = bits_per_dim(module.shared_nll_stderr_nats(), module.spec.num_dims)
    out["nll_bpd_stderr"] = math.sqrt(out["nll_bpd_stderr"] ** 2 + shared**2)
    out["nll_bpd_shared_stderr"] = shared
    out["per_example_bpd"] = _gather_batches(mine)
    return out
