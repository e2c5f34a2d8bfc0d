"""Progress of a long loop outside Lightning's (evaluation: test NLL, sampling): a log line every
`every_s` seconds with done/total, the rate and the time left. Training's progress bar, a
Lightning callback, is training/progress.py."""

from __future__ import annotations

import logging
import time

log = logging.getLogger("genbench.evaluate")


class Progress:
    """Call with the amount done so far; logs at most every `every_s` seconds (and at the end of
    a loop that took longer than that): a short loop stays quiet."""

    def __init__(self, what: str, total: int, unit: str, every_s: float = 30.0):
        self.what, self.total, self.unit, self.every_s = what, total, unit, every_s
        self.start = self.last = time.perf_counter()

    def __call__(self, done: int) -> None:
        now = time.perf_counter()
        if now - self.last < self.every_s and (
            done < self.total or now - self.start < self.every_s
        ):
            return
        self.last = now
        elapsed = now - self.start
        rate = done / elapsed if elapsed > 0 else 0.0
        left = (self.total - done) / rate if rate > 0 else float("nan")
        log.info(
            "%s: %d/%d %s (%.0f%%), %.3g %s/s, %s left",
            self.what,
            done,
            self.total,
            self.unit,
            100 * done / max(self.total, 1),
            rate,
            self.unit,
            f"{left:.0f} s" if left == left else "?",
        )
