"""The project's own logging setup: one line per message, no library advertising."""

from __future__ import annotations

import logging
import warnings

# Library tips and advertisements, and lines every Trainer prints again (the FLOP probe's and the
# run's: the job's own start line names the seed and the device instead).
NOISE = (
    "💡 Tip",
    "litlogger",
    "litmodels",
    "Seed set to",
    "GPU available:",
    "TPU available:",
    "HPU available:",
)


class DropNoise(logging.Filter):
    """Drop library tips, advertisements and per-Trainer repeats (NOISE)."""

    def filter(self, record: logging.LogRecord) -> bool:
        msg = record.getMessage()
        return not any(n in msg for n in NOISE)


def quiet_library_logs() -> None:
    """Route Lightning's messages through the root handlers only (Hydra's console and job log
    file), once, and drop its tips. Lightning adds a handler of its own when it is imported
    before logging is configured, which printed every INFO line twice."""
    # A deprecation inside Lightning's own pytree helper, printed at every fit: not ours to fix.
    warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\).*")
    # Small data (digits: 15 batches an epoch) is below Lightning's logging interval by design:
    # validation points come from the budget, losses are logged every log_every_n_steps steps.
    warnings.filterwarnings("ignore", message=r".*smaller than the logging interval.*")
    root = logging.getLogger()
    for name in ("lightning", "lightning.pytorch", "lightning.fabric"):
        lg = logging.getLogger(name)
        if root.handlers:
            for h in list(lg.handlers):
                lg.removeHandler(h)
            lg.propagate = True
    for h in root.handlers or []:
        if not any(isinstance(f, DropNoise) for f in h.filters):
            h.addFilter(DropNoise())
