"""Progress a batch job can read: a Rich bar on a terminal, log lines off one.

Under SLURM, CI or `nohup` the output goes to a file, where a Rich bar draws nothing; there
`LogProgress` writes one line every `every_n_steps` optimiser steps or `every_s` seconds:
step/total, steps/s, the latest validation metric and the time left.
"""

from __future__ import annotations

import logging
import sys
import time

from lightning.pytorch.callbacks import ProgressBar, RichProgressBar

log = logging.getLogger("genbench.progress")


def _duration(seconds: float) -> str:
    m, s = divmod(int(seconds), 60)
    h, m = divmod(m, 60)
    return f"{h}h{m:02d}m{s:02d}s" if h else f"{m}m{s:02d}s"


class LogProgress(ProgressBar):
    """One log line per `every_n_steps` steps or `every_s` seconds, whichever comes first."""

    def __init__(self, every_n_steps: int, every_s: float):
        super().__init__()
        self.every_n_steps, self.every_s = every_n_steps, every_s
        self._enabled = True

    def disable(self) -> None:
        self._enabled = False

    def enable(self) -> None:
        self._enabled = True

    def on_train_start(self, trainer, pl_module) -> None:
        self._t0 = self._last_t = time.perf_counter()
        self._step0 = self._last_step = trainer.global_step

    def line(self, trainer) -> str:
        step, total = trainer.global_step, trainer.max_steps
        elapsed = time.perf_counter() - self._t0
        rate = (step - self._step0) / elapsed if elapsed > 0 else 0.0
        parts = [f"step {step}/{total}" if total and total > 0 else f"step {step}"]
        if total and total > 0:
            parts[0] += f" ({100 * step / total:.0f}%)"
        parts.append(f"{rate:.1f} steps/s")
        for key in ("val/nll_bpd", "val/fid"):
            if key in trainer.callback_metrics:
                parts.append(f"{key} {float(trainer.callback_metrics[key]):.4g}")
        if total and total > 0 and rate > 0:
            parts.append(f"{_duration((total - step) / rate)} left")
        return ", ".join(parts)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if not self._enabled or not trainer.is_global_zero:
            return
        now, step = time.perf_counter(), trainer.global_step
        due = step - self._last_step >= self.every_n_steps or now - self._last_t >= self.every_s
        if due or step == trainer.max_steps:
            log.info(self.line(trainer))
            self._last_t, self._last_step = now, step


def progress_bar(every_n_steps: int, every_s: float) -> ProgressBar:
    """Rich's bar on a terminal, LogProgress when the output goes to a file or a pipe."""
    if sys.stderr.isatty():
        return RichProgressBar()
    return LogProgress(every_n_steps, every_s)
