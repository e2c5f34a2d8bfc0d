"""Shared fixtures: compose the real Hydra configs exactly as genbench-train does."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, open_dict

from genbench.config import register
from tests.commands import smoke

CONF_DIR = str(Path(__file__).resolve().parents[1] / "conf")
register()  # the config schemas and resolvers, as the console scripts do

os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_SILENT", "true")
# Fidelity caches (reference statistics, first-use classifiers) outside the user's home cache.
os.environ.setdefault("GENBENCH_CACHE", str(Path(tempfile.gettempdir()) / "genbench-test-cache"))
torch.set_num_threads(min(2, os.cpu_count() or 1))


def compose_config(
    overrides: list[str], output_dir: str | Path | None = None, config_name: str = "train"
) -> DictConfig:
    """Compose conf/<config_name>.yaml with `overrides`, with the Hydra resolvers available."""
    GlobalHydra.instance().clear()
    with initialize_config_dir(version_base="1.3", config_dir=CONF_DIR):
        cfg = compose(config_name, overrides=overrides, return_hydra_config=True)
    HydraConfig.instance().set_config(cfg)
    with open_dict(cfg):
        if output_dir is not None:
            cfg.paths.output_dir = str(output_dir)
        del cfg["hydra"]
    return cfg


@pytest.fixture
def fast_cfg(tmp_path):
    """A function: overrides -> a composed smoke-preset config writing under tmp_path."""

    def make(*overrides: str) -> DictConfig:
        return compose_config(smoke() + list(overrides), tmp_path / "run")

    return make


def eval_settings(base: str = "default", **values):
    """The evaluation settings of conf/eval/<base>.yaml (cache under GENBENCH_CACHE), with
    `values` in place of some of them."""
    from genbench.core.settings import EvalSettings

    cfg = compose_config([f"eval={base}"])
    return EvalSettings.from_mapping({**cfg.eval, **values})
