"""Build a family's module from its model config."""

from __future__ import annotations

from hydra.utils import instantiate
from omegaconf import DictConfig

from genbench.core.spec import DataSpec
from genbench.families.base import GenerativeModule


def build_model(model_cfg: DictConfig, spec: DataSpec) -> GenerativeModule:
    """Instantiate the model config for a data spec (the spec is passed as a keyword)."""
    # Through a partial, so Hydra does not turn the DataSpec dataclass into a DictConfig; plain
    # containers (_convert_="all"), so checkpoints' hyper-parameters load with weights_only; not
    # recursive: nested configs with a _target_ (the optimizer, the scheduler) reach the module
    # as plain dicts, instantiated by configure_optimizers.
    module = instantiate(model_cfg, _partial_=True, _convert_="all", _recursive_=False)(spec=spec)
    if not isinstance(module, GenerativeModule):
        raise TypeError(f"model _target_ {model_cfg._target_!r} is not a GenerativeModule")
    return module
