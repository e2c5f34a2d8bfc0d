"""Learning-rate schedules a model config can name (model.scheduler._target_)."""

from __future__ import annotations

from torch.optim.lr_scheduler import LambdaLR


class LinearWarmup(LambdaLR):
    """lr x min(1, (step + 1) / warmup_steps): a linear warm-up, then constant."""

    def __init__(self, optimizer, warmup_steps: int):
        if warmup_steps < 1:
            raise ValueError(f"model.scheduler.warmup_steps={warmup_steps} must be >= 1")
        self.warmup_steps = warmup_steps
        super().__init__(optimizer, self.factor)

    def factor(self, step: int) -> float:
        return min(1.0, (step + 1) / self.warmup_steps)
