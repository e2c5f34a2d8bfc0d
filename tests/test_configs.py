"""Every model x dataset x hardware=cpu composes and instantiates; Hydra's errors reach the user."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from hydra.utils import instantiate

from genbench.config import check_config
from genbench.families.base import GenerativeModule
from genbench.families.build import build_model
from genbench.training.budget import trainer_limits
from tests.commands import genbench
from tests.conftest import CONF_DIR, compose_config

MODELS = sorted(
    str(p.relative_to(Path(CONF_DIR, "model")).with_suffix(""))
    for p in Path(CONF_DIR, "model").rglob("*.yaml")
)
DATASETS = sorted(p.stem for p in Path(CONF_DIR, "dataset").glob("*.yaml"))
HARDWARE = sorted(p.stem for p in Path(CONF_DIR, "hardware").glob("*.yaml"))


@pytest.mark.parametrize("dataset", DATASETS)
@pytest.mark.parametrize("model", MODELS)
def test_model_dataset_compose_and_instantiate(model, dataset, tmp_path):
    cfg = compose_config([f"model={model}", f"dataset={dataset}", "hardware=cpu"], tmp_path)
    check_config(cfg)  # what genbench-train checks before anything runs
    datamodule = instantiate(cfg.dataset)
    module = build_model(cfg.model, datamodule.spec)  # the spec needs no data files
    assert isinstance(module, GenerativeModule)
    assert module.spec == datamodule.spec
    assert cfg.model_name == model and cfg.dataset_name == dataset
    assert sum(p.numel() for p in module.parameters()) > 0


@pytest.mark.parametrize("hardware", HARDWARE)
def test_hardware_presets_compose(hardware, tmp_path):
    cfg = compose_config([f"hardware={hardware}"], tmp_path)
    assert cfg.trainer.accelerator == cfg.hardware.accelerator
    assert cfg.trainer.devices == cfg.hardware.devices


def test_cpu_trainer_and_loggers_instantiate(tmp_path):
    cfg = compose_config(["logger=many", "hardware=cpu"], tmp_path)
    loggers = [instantiate(c) for c in cfg.logger.values()]
    assert {type(lg).__name__ for lg in loggers} == {"WandbLogger", "CSVLogger"}
    limits = trainer_limits(compose_config(["budget=steps"], tmp_path).budget, None)
    trainer = instantiate(cfg.trainer, logger=False, enable_checkpointing=False, **limits)
    assert trainer.max_steps == 2000 and trainer.val_check_interval == 200


def _cli(*args: str) -> subprocess.CompletedProcess:
    return genbench("train", *args, timeout=120)


def test_cfg_job_prints_composed_config():
    out = _cli("model=vae", "dataset=moons", "--cfg", "job")
    assert out.returncode == 0, out.stderr
    assert "genbench.families.vae.VAE" in out.stdout and "name: moons" in out.stdout


def test_unknown_option_lists_valid_choices_in_one_line():
    out = _cli("model=nope")
    assert out.returncode == 2
    assert out.stderr.strip().splitlines() == [
        "genbench-train: error: model=nope is not an option "
        "(valid: arm, diffusion, ebm, flow, flow_matching, gan, vae)"
    ]


def test_console_scripts_find_the_configs():
    bin_dir = Path(sys.executable).parent
    for script in ("genbench-train", "genbench-eval", "genbench-table"):
        out = subprocess.run(
            [str(bin_dir / script), "--cfg", "job"],
            cwd="/",
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert out.returncode == 0, (script, out.stderr[-1000:])
