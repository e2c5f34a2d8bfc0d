"""The Lightning Trainer of tests that fit a module directly (not through a run)."""

from __future__ import annotations

import lightning as L

# What a test's fit does without: loggers, a progress bar, the model summary, checkpoints.
QUIET = dict(
    logger=False,
    enable_checkpointing=False,
    enable_progress_bar=False,
    enable_model_summary=False,
)


def quiet_trainer(**settings) -> L.Trainer:
    """A Trainer that logs, prints and saves nothing but what `settings` ask for."""
    return L.Trainer(**{**QUIET, **settings})
