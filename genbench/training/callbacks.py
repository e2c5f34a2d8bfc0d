"""Callbacks genbench adds to every run."""

from __future__ import annotations

import random
import time

import lightning as L
import numpy as np
import torch


class DivergenceMonitor(L.Callback):
    """Stop training cleanly when the loss or a parameter turns non-finite.

    Records the step in `self.diverged_at_step` and the reason in `self.reason`; the run then
    writes status "diverged" instead of evaluating NaN weights.
    """

    def __init__(self, check_params_every_n_steps: int = 50):
        self.every = check_params_every_n_steps
        self.diverged_at_step: int | None = None
        self.reason: str | None = None

    def _flag(self, trainer: L.Trainer, reason: str) -> None:
        if self.diverged_at_step is None:
            self.diverged_at_step = trainer.global_step
            self.reason = reason
        trainer.should_stop = True

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        flagged = getattr(pl_module, "diverged_reason", None)
        if flagged:  # the family's own diagnosis is the more specific one
            self._flag(trainer, flagged)
            return
        loss = outputs.get("loss") if isinstance(outputs, dict) else outputs
        if isinstance(loss, torch.Tensor) and not torch.isfinite(loss).all():
            self._flag(trainer, f"non-finite loss at step {trainer.global_step}")
            return
        if self.every and trainer.global_step % self.every == 0:
            for name, p in pl_module.named_parameters():
                if not torch.isfinite(p).all():
                    self._flag(
                        trainer, f"non-finite parameter {name} at step {trainer.global_step}"
                    )
                    return

    @property
    def diverged(self) -> bool:
        return self.diverged_at_step is not None


class RNGStateCheckpoint(L.Callback):
    """Carry the torch/numpy/python RNG states in checkpoints and restore them on resume.

    Restored at train start (after any sanity check), so a resumed run draws the same noise as
    an uninterrupted one: with epoch-seeded shuffling this makes CPU resume bit-for-bit.
    """

    def __init__(self):
        self._pending: dict | None = None

    def on_save_checkpoint(self, trainer, pl_module, checkpoint: dict) -> None:
        kind, keys, pos, has_gauss, cached = np.random.get_state()
        # Plain types and tensors only, so Lightning's weights_only loading accepts them.
        checkpoint["genbench_rng"] = {
            "torch": torch.get_rng_state(),
            "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, cached],
            "python": random.getstate(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
        }

    def on_load_checkpoint(self, trainer, pl_module, checkpoint: dict) -> None:
        self._pending = checkpoint.get("genbench_rng")

    def on_train_start(self, trainer, pl_module) -> None:
        if self._pending is None:
            return
        torch.set_rng_state(self._pending["torch"])
        kind, keys, pos, has_gauss, cached = self._pending["numpy"]
        np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
        random.setstate(self._pending["python"])
        if self._pending.get("cuda") is not None and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(self._pending["cuda"])
        self._pending = None


def process_age_s() -> float:
    """Seconds since this process started (Linux /proc; falls back to 0 elsewhere)."""
    import os

    try:
        with open(f"/proc/{os.getpid()}/stat") as f:
            start_ticks = int(f.read().rsplit(")", 1)[1].split()[19])
        with open("/proc/uptime") as f:
            uptime = float(f.read().split()[0])
        return uptime - start_ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return 0.0


class FirstStepTimer(L.Callback):
    """Start-up cost: process start -> first training step (`startup_s`, first run of a process
    only: later jobs of a multirun share the process) and run start -> first step (`setup_s`)."""

    _process_used = False

    def __init__(self):
        self.created = time.perf_counter()
        self.first_run_of_process = not FirstStepTimer._process_used
        FirstStepTimer._process_used = True
        self.startup_s: float | None = None
        self.setup_s: float | None = None

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if self.setup_s is None:
            self.setup_s = time.perf_counter() - self.created
            if self.first_run_of_process:
                self.startup_s = process_age_s()
