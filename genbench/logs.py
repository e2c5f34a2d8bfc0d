"""The project's own logging setup: one line per message, no library advertising."""

from __future__ import annotations

import logging
import warnings

NOISE = ("💡 Tip", "litlogger", "litmodels")


class DropNoise(logging.Filter):
    """Drop library tips and advertisements (Lightning's litlogger / litmodels lines)."""

    def filter(self, record: logging.LogRecord) -> bool:
        msg = record.getMessage()
        return not any(n in msg for n in NOISE)


def quiet_library_logs() -> None:
    """Route Lightning's messages through the root handlers only (Hydra's console and job log
    file), once, and drop its tips. Lightning adds a handler of its own when it is imported
    before logging is configured, which printed every INFO line twice."""
    # A deprecation inside Lightning's own pytree helper, printed at every fit: not ours to fix.
    warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\).*")
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
