"""The YAML is the one source of defaults: every family's constructor takes exactly the keys of
its model config, none with a Python default (so no second, disagreeing set of defaults)."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest
from hydra.utils import get_class
from omegaconf import OmegaConf

from tests.conftest import CONF_DIR

MODEL_FILES = sorted(Path(CONF_DIR, "model").rglob("*.yaml"))


@pytest.mark.parametrize("path", MODEL_FILES, ids=lambda p: str(p.relative_to(CONF_DIR)))
def test_constructor_takes_the_yaml_keys_without_defaults(path):
    cfg = OmegaConf.load(path)
    if "_target_" not in cfg:  # a variant: its base family's file is checked
        pytest.skip(f"{path.name} extends another model config")
    params = inspect.signature(get_class(cfg._target_).__init__).parameters
    args = {k: p for k, p in params.items() if k not in ("self", "spec")}
    with_defaults = sorted(k for k, p in args.items() if p.default is not inspect.Parameter.empty)
    assert with_defaults == [], f"{cfg._target_} has Python defaults for {with_defaults}"
    keys = set(cfg) - {"_target_", "defaults"}
    assert set(args) == keys, (
        f"constructor-only: {sorted(set(args) - keys)}, yaml-only: {sorted(keys - set(args))}"
    )
