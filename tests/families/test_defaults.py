"""The YAML is the one source of defaults: every family's constructor takes exactly the keys of
its model config, none with a Python default (so no second, disagreeing set of defaults)."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest
from hydra.utils import get_class
from omegaconf import OmegaConf

from tests.conftest import CONF_DIR, compose_config

MODEL_FILES = sorted(Path(CONF_DIR, "model").rglob("*.yaml"))


@pytest.mark.parametrize("path", MODEL_FILES, ids=lambda p: str(p.relative_to(CONF_DIR)))
def test_constructor_takes_the_yaml_keys_without_defaults(path):
    if "_target_" not in OmegaConf.load(path):  # a variant: its base family's file is checked
        pytest.skip(f"{path.name} extends another model config")
    name = str(path.relative_to(Path(CONF_DIR, "model")).with_suffix(""))
    cfg = compose_config([f"model={name}"]).model  # with the parts it composes (model.unet)
    params = inspect.signature(get_class(cfg._target_).__init__).parameters
    args = {k: p for k, p in params.items() if k not in ("self", "spec")}
    with_defaults = sorted(k for k, p in args.items() if p.default is not inspect.Parameter.empty)
    assert with_defaults == [], f"{cfg._target_} has Python defaults for {with_defaults}"
    keys = set(cfg) - {"_target_", "defaults"}
    assert set(args) == keys, (
        f"constructor-only: {sorted(set(args) - keys)}, yaml-only: {sorted(keys - set(args))}"
    )


def _model_keys() -> set[str]:
    keys: set[str] = set()
    for path in MODEL_FILES + sorted(Path(CONF_DIR, "model_parts").glob("*.yaml")):
        cfg = OmegaConf.to_container(OmegaConf.load(path))
        stack = [cfg]
        while stack:
            node = stack.pop()
            if isinstance(node, dict):
                keys |= set(node)
                stack += list(node.values())
    return keys


def test_no_network_has_a_default_for_a_setting_the_yaml_holds():
    """The networks take what the families pass them: a default for a key some model YAML
    sets (hidden, channels, dropout, ...) would be a second, silent source of that setting."""
    import genbench.nets as nets_pkg

    keys = _model_keys()
    offenders = []
    for mod_path in Path(nets_pkg.__file__).parent.glob("*.py"):
        module = __import__(f"genbench.nets.{mod_path.stem}", fromlist=["*"])
        for obj in vars(module).values():
            if inspect.isclass(obj) and obj.__module__ == module.__name__:
                for name, p in inspect.signature(obj.__init__).parameters.items():
                    if p.default is not inspect.Parameter.empty and name in keys:
                        offenders.append(f"{obj.__name__}.{name}")
    assert offenders == [], offenders
