"""Callbacks genbench adds to every run."""

from __future__ import annotations

import random
import time

import lightning as L
import numpy as np
import torch

from genbench.core.seeds import derive_seed
from genbench.training.checkpoints import validation_follows


class DivergenceMonitor(L.Callback):
    """Stop training cleanly when the loss or a parameter turns non-finite.

    Records the step in `self.diverged_at_step` and the reason in `self.reason`; the run then
    writes status "diverged" instead of evaluating NaN weights.
    """

    def __init__(self, check_params_every_n_steps: int):
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


def _torch_rng_states() -> tuple:
    cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None
    return torch.get_rng_state(), cuda


def _set_torch_rng_states(states: tuple) -> None:
    cpu, cuda = states
    torch.set_rng_state(cpu)
    if cuda is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(cuda)


class RNGStateCheckpoint(L.Callback):
    """Carry the torch/numpy/python RNG states in checkpoints and restore them on resume, and
    give validation noise of its own.

    Restored at train start (after any sanity check), so a resumed run draws the same noise as
    an uninterrupted one: with epoch-seeded shuffling this makes CPU resume bit-for-bit.

    Validation draws (a stochastic bound's timesteps and noise, dequantisation, probes) come from
    the torch generators seeded at every validation batch from (`validation_seed`, rank, batch),
    and a term shared by all examples (the EBM's log Z) from `validation_seed` alone, the same on
    every rank (GenerativeModule.begin_nll_pass); the training stream is restored at the end:
    every validation sees the same noise, so successive values differ by the weights alone
    (common random numbers: the best checkpoint is chosen by the model, not by the draw), and
    training draws the same noise however often it validates.
    """

    def __init__(self, validation_seed: int):
        self.validation_seed = validation_seed
        self._pending: dict | None = None
        self._training_rng: tuple | None = None

    def on_save_checkpoint(self, trainer, pl_module, checkpoint: dict) -> None:
        kind, keys, pos, has_gauss, cached = np.random.get_state()
        cpu, cuda = self._training_rng or _torch_rng_states()  # the training stream's
        # Plain types and tensors only, so Lightning's weights_only loading accepts them.
        checkpoint["genbench_rng"] = {
            "torch": cpu,
            "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, cached],
            "python": random.getstate(),
            "cuda": cuda,
        }

    def on_load_checkpoint(self, trainer, pl_module, checkpoint: dict) -> None:
        self._pending = checkpoint.get("genbench_rng")

    def on_train_start(self, trainer, pl_module) -> None:
        if self._pending is None:
            return
        _set_torch_rng_states((self._pending["torch"], self._pending.get("cuda")))
        kind, keys, pos, has_gauss, cached = self._pending["numpy"]
        np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
        random.setstate(self._pending["python"])
        self._pending = None

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx: int) -> None:
        # Before the validation loop starts its data loader's iterator (a global draw).
        if validation_follows(trainer):
            self._training_rng = _torch_rng_states()

    def on_validation_epoch_start(self, trainer, pl_module) -> None:
        if self._training_rng is None:  # the sanity check, or validation outside training
            self._training_rng = _torch_rng_states()
        if hasattr(pl_module, "begin_nll_pass"):
            pl_module.begin_nll_pass(derive_seed(self.validation_seed))

    def on_validation_batch_start(
        self, trainer, pl_module, batch, batch_idx: int, dataloader_idx: int = 0
    ) -> None:
        torch.manual_seed(derive_seed(self.validation_seed, trainer.global_rank, batch_idx))

    def on_validation_epoch_end(self, trainer, pl_module) -> None:
        if self._training_rng is not None:
            _set_torch_rng_states(self._training_rng)
            self._training_rng = None


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
    only: later jobs of a multirun share the process) and run start -> first step (`setup_s`);
    and the training wall time that made the final weights (`train_time_s`): this process's
    fit plus what the checkpoint it resumed from carried, so a resumed run reports its whole
    training, and work redone after a kill (past the last checkpoint) is counted once."""

    _process_used = False

    def __init__(self):
        self.created = time.perf_counter()
        self.first_run_of_process = not FirstStepTimer._process_used
        FirstStepTimer._process_used = True
        self.startup_s: float | None = None
        self.setup_s: float | None = None
        self._fit_start: float | None = None
        self._carried_s = 0.0  # training seconds of the processes before a resume

    def setup(self, trainer, pl_module, stage: str) -> None:
        if stage == "fit":
            self._fit_start = time.perf_counter()

    def train_time_s(self) -> float:
        now = 0.0 if self._fit_start is None else time.perf_counter() - self._fit_start
        return self._carried_s + now

    def state_dict(self) -> dict:
        return {"train_time_s": self.train_time_s()}

    def load_state_dict(self, state_dict: dict) -> None:
        self._carried_s = float(state_dict.get("train_time_s", 0.0))

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if self.setup_s is None:
            self.setup_s = time.perf_counter() - self.created
            if self.first_run_of_process:
                self.startup_s = process_age_s()
