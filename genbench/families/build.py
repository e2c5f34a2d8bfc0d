"""Build a family's module from its model config."""

from __future__ import annotations

from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

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


def scale_learning_rates(model_cfg: DictConfig, scale: float) -> DictConfig:
    """The model config with every learning rate times `scale` (the top-level `lr_scale`, for
    sensitivity sweeps): `optimizer.lr` and the top-level `lr_*` keys (the GAN's lr_g, lr_d).
    A copy; scale 1 returns the config itself."""
    if not scale > 0:
        raise ValueError(f"lr_scale={scale}; valid: a number > 0 (1: the model's own rates)")
    if scale == 1:
        return model_cfg
    out = OmegaConf.create(OmegaConf.to_container(model_cfg, resolve=True))
    keys = [k for k in out if str(k).startswith("lr_") and isinstance(out[k], (int, float))]
    for k in keys:
        out[k] = out[k] * scale
    if isinstance(out.get("optimizer"), DictConfig) and "lr" in out.optimizer:
        out.optimizer.lr = out.optimizer.lr * scale
        keys.append("optimizer.lr")
    if not keys:
        raise ValueError(
            f"lr_scale={scale}: model {model_cfg.get('_target_')} has no learning rate to scale "
            "(valid: a config with optimizer.lr or lr_* keys, or lr_scale=1)"
        )
    return out
