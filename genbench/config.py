"""Checks on the composed config that Hydra cannot make for us (types of numeric overrides)."""

from __future__ import annotations

from omegaconf import DictConfig, OmegaConf


class ConfigError(ValueError):
    """A config value of the wrong type or out of range."""


# key -> (accepted types, description); None is accepted where the default is null.
NUMERIC_KEYS = {
    "seed": (int, "an int"),
    "trainer.max_steps": (int, "an int (-1 for no limit)"),
    "trainer.val_check_interval": ((int, float), "an int (steps) or a float (fraction)"),
    "trainer.log_every_n_steps": (int, "an int"),
    "trainer.limit_val_batches": ((int, float), "an int or a float"),
    "trainer.gradient_clip_val": ((int, float), "a number"),
    "dataset.batch_size": (int, "an int"),
    "dataset.eval_batch_size": (int, "an int"),
    "eval.grid_samples": (int, "an int"),
    "eval.throughput_samples": (int, "an int"),
    "eval.throughput_batch_size": (int, "an int"),
}


def check_config(cfg: DictConfig) -> None:
    """Raise ConfigError naming the first key whose value has the wrong type."""
    for key, (types, what) in NUMERIC_KEYS.items():
        value = OmegaConf.select(cfg, key, default=None)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, types):
            raise ConfigError(f"{key}={value!r} must be {what}")
        if key.endswith(("batch_size", "max_steps")) and value == 0:
            raise ConfigError(f"{key}=0 must be positive")
