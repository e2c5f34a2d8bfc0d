"""Typed schemas of the config groups (Hydra structured configs), resolvers, the family list.

`register()` is the one place that registers them; the CLIs and the tests call it before Hydra
composes a config. Each YAML file of the trainer, hardware, budget, eval and dataset groups
starts from its schema (`- /schema/<group>@_here_: <name>` in its defaults), so Hydra refuses a
key the schema does not have and a value of the wrong type, naming the key.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from enum import Enum
from typing import Any

from hydra.core.config_store import ConfigStore
from hydra.core.global_hydra import GlobalHydra
from omegaconf import MISSING, OmegaConf

from genbench.core.matmul import check_matmul_precision
from genbench.core.settings import EvalSettings

# The top-level conf/ folder ships inside the package as genbench/conf (a link in the source
# tree, real files in a wheel), so installed console scripts find it.
CONF_PACKAGE = "pkg://genbench.conf"


@dataclass
class TrainerSchema:
    """The lightning.Trainer settings genbench composes (the budget group sets the length)."""

    _target_: str = "lightning.Trainer"
    accelerator: str = MISSING
    devices: Any = MISSING  # int, list of ids or "auto"
    strategy: str = MISSING
    precision: str = MISSING
    num_nodes: int = 1
    check_val_every_n_epoch: int | None = None
    log_every_n_steps: int = 25
    limit_val_batches: Any = None  # int (batches) or float (fraction); null = all
    gradient_clip_val: float | None = None
    accumulate_grad_batches: int = 1
    num_sanity_val_steps: int | None = None
    deterministic: bool = False
    enable_model_summary: bool = False


@dataclass
class HardwareSchema:
    accelerator: str = MISSING  # cpu | gpu
    devices: Any = MISSING
    strategy: str = MISSING  # auto | ddp
    precision: str = MISSING  # 32-true | bf16-mixed | ...
    num_nodes: int = 1
    num_workers: int = 0  # data-loader worker processes
    threads: int | None = None  # torch, BLAS and OpenMP threads per process; null = defaults
    # Speed switches (genbench/training/speed.py): the same training, faster where they pay;
    # the same losses within the tolerances of tests/training/test_speed_switches.py.
    fused_optimizer: bool = MISSING  # every optimiser a family builds takes fused=True
    channels_last: bool = MISSING  # the module and image batches in torch.channels_last
    compile: bool = MISSING  # torch.compile of the family's networks (training only)
    matmul_precision: str = MISSING  # torch.set_float32_matmul_precision: highest | high | medium


class BudgetKind(Enum):
    flops = "flops"
    steps = "steps"
    time = "time"


@dataclass
class BudgetSchema:
    """How long a run trains, and when it validates (validation is outside the budget)."""

    kind: BudgetKind = MISSING
    flops: float | None = None  # kind=flops: training FLOPs (forward + backward) in all
    steps: int | None = None  # kind=steps: optimiser steps (Lightning's global_step)
    max_time: str | None = None  # kind=time: "DD:HH:MM:SS" of training wall-clock
    max_steps: int | None = None  # kind=time: a step cap as well (null = none)
    validations: int | None = None  # kind=flops, steps: validation points, evenly spaced
    val_check_interval: int | None = None  # kind=time: validate every N batches
    probe_batches: int = 2  # kind=flops: batches whose FLOPs are counted before training
    # Validation images: a fixed random subset of the validation split scored at every
    # validation with the family's test estimator (its cost is what this bounds); null = all.
    val_examples: int | None = None


# The budget keys each kind reads: one of another kind's keys set (budget.flops=2e12 under the
# default budget=time) would be ignored in silence, so it is an error.
BUDGET_KEYS = {
    "flops": ("flops", "validations"),
    "steps": ("steps", "validations"),
    "time": ("max_time", "max_steps", "val_check_interval"),
}
OPTIONAL_BUDGET_KEYS = ("max_steps", "val_check_interval")  # null: no cap, Lightning's default
# Lightning's max_time string; a wrong one would fail only once the Trainer is built.
MAX_TIME = re.compile(r"\d+:\d{2}:\d{2}:\d{2}")


def check_budget(budget) -> None:
    """A one-line ValueError naming a budget key that the budget in force does not read, or a
    value it cannot train with."""
    kind = budget.kind.value if isinstance(budget.kind, BudgetKind) else str(budget.kind)
    for key in sorted(set().union(*BUDGET_KEYS.values()) - set(BUDGET_KEYS[kind])):
        if budget[key] is not None:
            value = f"{budget[key]:g}" if isinstance(budget[key], float) else budget[key]
            owners = " or ".join(f"budget={k}" for k, keys in BUDGET_KEYS.items() if key in keys)
            raise ValueError(
                f"budget.{key}={value} is set but budget.kind={kind} is in force "
                f"(budget={kind} reads {', '.join(BUDGET_KEYS[kind])}); add {owners}"
            )
    for key in BUDGET_KEYS[kind]:
        if budget[key] is None and key not in OPTIONAL_BUDGET_KEYS:
            raise ValueError(f"budget.{key} is null; budget={kind} needs it")
    least = {"flops": 1, "steps": 1, "validations": 1, "max_steps": 1, "val_check_interval": 1}
    least["val_examples"] = 1
    least["probe_batches"] = 1 if kind == "flops" else 0  # the FLOP budget is counted by it
    for key, low in least.items():
        if budget[key] is not None and budget[key] < low:
            raise ValueError(f"budget.{key}={budget[key]}; valid: a number >= {low}")
    if kind == "time" and not MAX_TIME.fullmatch(str(budget.max_time)):
        raise ValueError(f"budget.max_time={budget.max_time!r}; valid: DD:HH:MM:SS")


def describe_budget(budget) -> str:
    """The budget in force, for the run's start line: e.g. "budget=flops, 1e+12 FLOPs"."""
    kind = budget.kind.value if isinstance(budget.kind, BudgetKind) else str(budget.kind)
    if kind == "flops":
        return f"budget=flops, {budget.flops:.3g} FLOPs"
    if kind == "steps":
        return f"budget=steps, {budget.steps} steps"
    cap = f", at most {budget.max_steps} steps" if budget.max_steps is not None else ""
    return f"budget=time, {budget.max_time} (DD:HH:MM:SS){cap}"


# Settings of the dataset and hardware groups a DataLoader or torch would refuse only once the
# run is under way (null where allowed: the library's default).
AT_LEAST = {
    "dataset.batch_size": 1,
    "dataset.eval_batch_size": 1,
    "dataset.num_workers": 0,
    "hardware.num_workers": 0,
    "hardware.threads": 1,
}


def check_config(cfg) -> None:
    """What a composed train or eval config must hold before anything runs, beyond the
    schemas' types: a one-line ValueError naming the key and what is valid. Every stage that
    takes a setting whole checks it again (EvalSettings, trainer_limits)."""
    seed = cfg.get("seed")
    if "seed" in cfg and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise ValueError(f"seed={seed!r}; valid: an integer")
    for key, least in AT_LEAST.items():
        value = OmegaConf.select(cfg, key)
        if value is not None and value < least:
            raise ValueError(f"{key}={value}; valid: an integer >= {least}")
    lr_scale = cfg.get("lr_scale")
    if "lr_scale" in cfg and (
        isinstance(lr_scale, bool) or not isinstance(lr_scale, (int, float)) or not lr_scale > 0
    ):
        raise ValueError(f"lr_scale={lr_scale!r}; valid: a number > 0 (1: the model's own rates)")
    if "hardware" in cfg and "matmul_precision" in cfg.hardware:
        check_matmul_precision(cfg.hardware.matmul_precision)
    if "budget" in cfg:
        check_budget(cfg.budget)
    if "eval" in cfg:
        EvalSettings.from_mapping(cfg.eval)


@dataclass
class DatasetSchema:
    _target_: str = MISSING
    batch_size: int = MISSING
    eval_batch_size: int = MISSING
    num_workers: int = 0
    shuffle_seed: int = 0
    feature_extractor: str | None = None  # inception | classifier | coords
    val_examples: int | None = None  # budget.val_examples (model selection's images)


@dataclass
class Toy2DSchema(DatasetSchema):
    name: str = MISSING
    num_train: int = MISSING
    num_val: int = MISSING
    num_test: int = MISSING
    seed: int = MISSING


@dataclass
class FilesDatasetSchema(DatasetSchema):
    """MNIST, Fashion-MNIST, CIFAR-10: files under `root`; val = the last num_val of train."""

    root: str = MISSING
    download: bool = False
    num_val: int = MISSING
    num_train: int | None = None  # MNIST-like: the first N training examples only (quick runs)
    num_test: int | None = None  # MNIST-like: the first N test examples only


@dataclass
class ImageFolderSchema(DatasetSchema):
    root: str = MISSING
    name: str = MISSING
    image_size: int = MISSING
    channels: int = MISSING
    val_fraction: float = MISSING
    test_fraction: float = MISSING
    seed: int = MISSING


SCHEMAS = {
    "trainer": {"trainer": TrainerSchema},
    "hardware": {"hardware": HardwareSchema},
    "budget": {"budget": BudgetSchema},
    "eval": {"eval": EvalSettings},
    "dataset": {
        "digits": DatasetSchema,
        "toy2d": Toy2DSchema,
        "files": FilesDatasetSchema,
        "image_folder": ImageFolderSchema,
    },
}


def slug(text: str) -> str:
    """A config choice as a file-name part: model=gan/hinge_sn -> gan-hinge_sn."""
    return str(text).replace("/", "-")


SUBDIR_OVERRIDES_MAX = 120  # longer override lists are named by their hash


def sweep_subdir(name: str, overrides: str) -> str:
    """A sweep job's folder: NAME (model, data set, seed), then the job's other overrides
    (Hydra's override_dirname, sorted, e.g. `budget.flops=3e11,optim.lr=0.001`), made safe for a
    file name; over SUBDIR_OVERRIDES_MAX characters they are replaced by a 10-digit hash.
    Unlike Hydra's job number, the name is a function of the job alone: widening a seed list or
    adding a model to a sweep leaves every finished job's folder where a rerun finds it."""
    if not overrides:
        return name
    safe = re.sub(r"[^A-Za-z0-9._=,+-]", "-", overrides)
    if len(safe) > SUBDIR_OVERRIDES_MAX:
        safe = hashlib.sha256(overrides.encode()).hexdigest()[:10]
    return f"{name}_{safe}"


THREADS_ENV = "GENBENCH_THREADS"


def env_threads(default: int) -> int:
    """hardware=cpu's threads (`${env_threads:2}`): $GENBENCH_THREADS when set, e.g. 1 for
    processes side by side (the test suite's workers), else `default`."""
    value = os.environ.get(THREADS_ENV, "").strip()
    if not value:
        return default
    if not value.isdigit() or int(value) < 1:
        raise ValueError(f"{THREADS_ENV}={value!r}; valid: an integer >= 1, or unset for {default}")
    return int(value)


def register() -> None:
    """Register the schemas (group schema/<group>) and resolvers; safe to call twice."""
    cs = ConfigStore.instance()
    for group, nodes in SCHEMAS.items():
        for name, node in nodes.items():
            cs.store(group=f"schema/{group}", name=name, node=node)
    if not OmegaConf.has_resolver("slug"):
        OmegaConf.register_new_resolver("slug", slug)
    if not OmegaConf.has_resolver("sweep_subdir"):
        OmegaConf.register_new_resolver("sweep_subdir", sweep_subdir)
    if not OmegaConf.has_resolver("env_threads"):
        OmegaConf.register_new_resolver("env_threads", env_threads)


def model_options() -> list[str]:
    """The model group's top-level options, i.e. the families a benchmark sweeps (variants live
    in sub-folders, e.g. model=gan/hinge_sn). Needs an initialised Hydra (a composed config)."""
    loader = GlobalHydra.instance().config_loader()
    return sorted(loader.get_group_options("model"))
