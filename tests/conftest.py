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

from genbench.config import THREADS_ENV, env_threads, register
from tests.commands import smoke

CONF_DIR = str(Path(__file__).resolve().parents[1] / "conf")
register()  # the config schemas and resolvers, as the console scripts do

os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_SILENT", "true")
# Fidelity caches (reference statistics, first-use classifiers) outside the user's home cache.
os.environ.setdefault("GENBENCH_CACHE", str(Path(tempfile.gettempdir()) / "genbench-test-cache"))
if os.environ.get("PYTEST_XDIST_WORKER"):
    # Workers side by side, one core each: a run's hardware=cpu threads too (conf/hardware/cpu.yaml
    # reads GENBENCH_THREADS), and the commands the tests start inherit it. Two threads in each
    # of two workers made the suite slower than one process (docs/performance.md).
    os.environ[THREADS_ENV] = os.environ["OMP_NUM_THREADS"] = "1"
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=1)
torch.set_num_threads(env_threads(min(2, os.cpu_count() or 1)))


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


# The one trained run the tests that read or re-evaluate a finished run share: a VAE on digits
# trained by the command line (its .hydra folder, train.log and console output as a user's),
# 64 fidelity samples, scored by the ELBO (IWAE-1: the cheapest estimate, and the loosest, so
# a re-evaluation with more importance samples has something to tighten) on 256 test images.
VAE_RUN = [
    *["model=vae", "dataset=digits", *smoke(), "eval.num_samples=64", "model.iw_samples=1"],
    "eval.nll_examples=256",
]


@pytest.fixture(scope="session")
def vae_run_once(tmp_path_factory):
    """`genbench-train VAE_RUN` once per session: (its run folder, the finished process). Read
    it through `vae_run`, which gives each test its own copy to change."""
    from tests.commands import genbench

    run_dir = tmp_path_factory.mktemp("shared") / "vae_digits"
    out = genbench("train", *VAE_RUN, f"hydra.run.dir={run_dir}", timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    return run_dir, out


@pytest.fixture
def vae_run(vae_run_once, tmp_path) -> Path:
    """This test's own copy of the shared trained VAE run (checkpoints, results, .hydra)."""
    import shutil

    return Path(shutil.copytree(vae_run_once[0], tmp_path / "run"))


def eval_settings(base: str = "default", **values):
    """The evaluation settings of conf/eval/<base>.yaml (cache under GENBENCH_CACHE), with
    `values` in place of some of them."""
    from genbench.core.settings import EvalSettings

    cfg = compose_config([f"eval={base}"])
    return EvalSettings.from_mapping({**cfg.eval, **values})


def _dataset_config(dataset: str) -> dict:
    """conf/dataset/<dataset>.yaml, resolved as a run resolves it, as a plain dict."""
    from omegaconf import OmegaConf

    return OmegaConf.to_container(compose_config([f"dataset={dataset}"]).dataset, resolve=True)


def dataset_keys(dataset: str, /, **values) -> dict:
    """conf/dataset/<dataset>.yaml's constructor keys with `values` in place of some of them: a
    plain dict, for a data module built in another process."""
    keys = _dataset_config(dataset)
    del keys["_target_"]
    return {**keys, **values}


def datamodule(dataset: str, /, **values):
    """The data module of conf/dataset/<dataset>.yaml with `values` in place of some of its keys
    (the YAML is the one source of the others); a constructor's error comes out as raised."""
    from hydra.utils import get_class

    keys = _dataset_config(dataset)
    return get_class(keys.pop("_target_"))(**{**keys, **values})


def extractor(dm, settings=None):
    """The data module's feature extractor as evaluation resolves it from `settings` (default:
    conf/eval/default.yaml's)."""
    from genbench.evaluation.extractors import resolve_extractor

    s = settings or eval_settings()
    return resolve_extractor(
        dm,
        s.cache_dir,
        inception_download=s.inception_download,
        inception_path=s.inception_weights,
    )


def fidelity_kwargs(settings) -> dict:
    """compute_fidelity's keyword arguments from evaluation settings: the cache folder, the
    batch size and fidelity_from_features' options (metric_options); the seed is the caller's."""
    from genbench.evaluation.sample_metrics import metric_options

    return {
        "cache_dir": settings.cache_dir,
        "batch_size": settings.fidelity_batch_size,
        **metric_options(settings),
    }


def loader_settings(name: str = "digits") -> dict:
    """The keys every data module takes (TensorDataModule's required ones: batching, workers,
    shuffling) as conf/dataset/<name>.yaml sets them: for data modules made up in tests."""
    import inspect

    from genbench.data.datamodules import TensorDataModule

    cfg = compose_config([f"dataset={name}"]).dataset
    params = inspect.signature(TensorDataModule.__init__).parameters.values()
    return {p.name: cfg[p.name] for p in params if p.default is p.empty and p.name != "self"}
