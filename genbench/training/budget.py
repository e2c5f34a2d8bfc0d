"""Training budgets: FLOPs (counted with PyTorch's FLOP counter), optimiser steps, or time.

`probe_flops` trains a copy of the module for a few batches under
`torch.utils.flop_counter.FlopCounterMode`, which counts the forward and backward FLOPs of
everything the family does in a training step (both GAN players, the EBM's SGLD chains, the
diffusion network at one sampled step); the optimiser's elementwise updates count nothing.
`trainer_limits` turns a budget config into the Trainer's max_steps / max_time /
val_check_interval, with validations evenly spaced over the budget.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from dataclasses import dataclass

import lightning as L
from torch.utils.flop_counter import FlopCounterMode


@dataclass(frozen=True)
class StepCost:
    """What one training batch costs: FLOPs and optimiser steps (Lightning's global_step)."""

    flops_per_batch: float
    steps_per_batch: float

    @property
    def flops_per_step(self) -> float:
        return self.flops_per_batch / self.steps_per_batch


class _StopAfter(L.Callback):
    """Stop after `batches` training batches, counted across epochs: batch_idx restarts each
    epoch, so a training split of fewer batches than the probe's (160 images, batches of 128)
    never reached it and the probe ran epochs forever."""

    def __init__(self, batches: int):
        self.batches, self.seen = batches, 0

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx: int) -> None:
        self.seen += 1
        if self.seen >= self.batches:
            trainer.should_stop = True


def probe_flops(
    module: L.LightningModule,
    make_datamodule: Callable[[], L.LightningDataModule],
    batches: int,
    accelerator: str,
    precision: str,
) -> StepCost:
    """FLOPs and optimiser steps per training batch, from `batches` batches of a copy of
    `module` on a fresh data module (the run itself is untouched, except for the global RNG,
    which the run seeds afterwards), rounded up to whole training cycles (a GAN with d_steps=5
    repeats every 5 batches, one of which also steps the generator)."""
    cycle = max(1, int(getattr(module, "training_cycle", 1)))
    batches = math.ceil(batches / cycle) * cycle
    probe = copy.deepcopy(module)
    trainer = L.Trainer(
        accelerator=accelerator,
        devices=1,
        precision=precision,
        max_steps=-1,
        max_epochs=-1,
        limit_val_batches=0,
        num_sanity_val_steps=0,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[_StopAfter(batches)],
    )
    with FlopCounterMode(display=False) as counter:
        trainer.fit(probe, datamodule=make_datamodule())
    seen = trainer.fit_loop.epoch_loop.batch_progress.total.completed
    if seen == 0 or trainer.global_step == 0:
        raise ValueError("the FLOP probe ran no training step (empty training split?)")
    return StepCost(counter.get_total_flops() / seen, trainer.global_step / seen)


def trainer_limits(budget, cost: StepCost | None) -> dict:
    """Trainer keyword arguments (max_steps, max_time, val_check_interval) for a budget config.

    flops: the first batch count whose FLOPs reach budget.flops (so every family trains within
    one batch's FLOPs of the budget); steps: budget.steps optimiser steps; both validate
    `validations` times, evenly spaced. time: budget.max_time of wall-clock (and max_steps).
    """
    kind = budget.kind.value if hasattr(budget.kind, "value") else str(budget.kind)
    if kind == "time":
        return {
            "max_time": budget.max_time,
            "max_steps": budget.max_steps if budget.max_steps is not None else -1,
            "val_check_interval": budget.val_check_interval,
        }
    if kind == "flops":
        if cost is None or not budget.flops or budget.flops <= 0:
            raise ValueError(f"budget.flops={budget.flops} must be a positive number")
        batches = max(1, math.ceil(budget.flops / cost.flops_per_batch))
    elif kind == "steps":
        if not budget.steps or budget.steps <= 0:
            raise ValueError(f"budget.steps={budget.steps} must be a positive int")
        per_batch = cost.steps_per_batch if cost is not None else 1.0
        batches = max(1, math.ceil(budget.steps / per_batch))
    else:
        raise ValueError(f"budget.kind={kind!r}; valid: flops, steps, time")
    if budget.validations < 1:
        raise ValueError(f"budget.validations={budget.validations} must be >= 1")
    per_batch = cost.steps_per_batch if cost is not None else 1.0
    return {
        "max_time": None,
        "max_steps": round(batches * per_batch),
        "val_check_interval": max(1, batches // budget.validations),
    }
