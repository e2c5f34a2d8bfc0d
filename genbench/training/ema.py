"""One exponential moving average of the weights, for every family: Lightning's WeightAveraging.

Validation, checkpoints' `state_dict`, and the model after training hold the averaged weights
(Lightning swaps them in; the live weights travel in the checkpoint's `current_model_state`, so a
resume continues both). Batch-norm running statistics are averaged with the weights at the same
rate (they summarise the activations of the weights they were gathered with, so the averaged
network gets averaged statistics, as in timm's ModelEma); every other buffer (masks, fitted
bases, counters) is copied from the live model. Every buffer must keep its shape in training.

The warm-up makes the rate applied at update n equal to 1 - min(decay, (1 + n) / (10 + n)): the
effective decay reaches `decay` only after (10 decay - 1) / (1 - decay) updates (8,991 for
0.999); `effective_decay(decay, steps)` is what a run of that many steps applied last.
"""

from __future__ import annotations

import torch
from lightning.pytorch.callbacks import WeightAveraging


def effective_decay(decay: float, n: int) -> float:
    """The decay applied at update n (n = updates before it): min(decay, (1 + n) / (10 + n))."""
    return min(decay, (1.0 + n) / (10.0 + n))


def warmup_ema(decay: float):
    """multi_avg_fn of AveragedModel: lerp towards the weights with rate 1 - effective_decay(decay,
    n), n = updates so far (TF's ExponentialMovingAverage with num_updates), so the average is
    useful after a few hundred steps, not only after ~1 / (1 - decay)."""

    @torch.no_grad()
    def update(averaged: list[torch.Tensor], current: list[torch.Tensor], n: torch.Tensor) -> None:
        torch._foreach_lerp_(averaged, current, 1.0 - effective_decay(decay, int(n)))

    return update


def batch_norm_statistics(module: torch.nn.Module) -> list[torch.Tensor]:
    """The running mean and variance buffers of every batch-norm layer of `module`, in order."""
    out = []
    for m in module.modules():
        if isinstance(m, torch.nn.modules.batchnorm._NormBase) and m.track_running_stats:
            out += [m.running_mean, m.running_var]
    return out


class EMA(WeightAveraging):
    """EMA of the parameters with decay `decay` (warm-up as in `warmup_ema`), every step."""

    def __init__(self, decay: float):
        if not 0.0 < decay < 1.0:
            raise ValueError(f"callbacks.ema.decay={decay} must be in (0, 1)")
        super().__init__(use_buffers=False, multi_avg_fn=warmup_ema(decay))
        self.decay = decay

    @torch.no_grad()
    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx: int) -> None:
        """The weights' update (Lightning's), which also copies every buffer from the live model;
        then the batch-norm statistics are averaged instead, from their averaged values before
        this update, at the rate the weights got."""
        averaged = self._average_model
        n = int(averaged.n_averaged) if averaged is not None else 0
        before = [b.clone() for b in batch_norm_statistics(averaged.module)] if n > 0 else []
        super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)
        if not before or int(averaged.n_averaged) == n:  # first update (a copy), or none
            return
        rate = 1.0 - effective_decay(self.decay, n)
        for old, new in zip(before, batch_norm_statistics(averaged.module), strict=True):
            new.copy_(old.lerp_(new, rate))
