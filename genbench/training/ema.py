"""One exponential moving average of the weights, for every family: Lightning's WeightAveraging.

Validation, checkpoints' `state_dict`, and the model after training hold the averaged weights
(Lightning swaps them in; the live weights travel in the checkpoint's `current_model_state`, so a
resume continues both). Only parameters are averaged: buffers (batch-norm statistics, fitted
bases) follow the live model, so every buffer must keep its shape during training.
"""

from __future__ import annotations

import torch
from lightning.pytorch.callbacks import WeightAveraging


def warmup_ema(decay: float):
    """multi_avg_fn of AveragedModel: lerp towards the weights with rate 1 - min(decay,
    (1 + n) / (10 + n)), n = updates so far (TF's ExponentialMovingAverage with num_updates),
    so the average is useful after a few hundred steps, not only after ~1 / (1 - decay)."""

    @torch.no_grad()
    def update(averaged: list[torch.Tensor], current: list[torch.Tensor], n: torch.Tensor) -> None:
        rate = 1.0 - min(decay, (1.0 + float(n)) / (10.0 + float(n)))
        torch._foreach_lerp_(averaged, current, rate)

    return update


class EMA(WeightAveraging):
    """EMA of the parameters with decay `decay` (warm-up as in `warmup_ema`), every step."""

    def __init__(self, decay: float):
        if not 0.0 < decay < 1.0:
            raise ValueError(f"callbacks.ema.decay={decay} must be in (0, 1)")
        super().__init__(use_buffers=False, multi_avg_fn=warmup_ema(decay))
        self.decay = decay
