"""What the family tests share: a short real fit, the test-split bits/dim, a Gaussian baseline,
a density's mass on a grid, and the checks every likelihood family passes on digits and moons."""

from __future__ import annotations

import math

import torch
from hydra.utils import instantiate

from genbench.families.build import build_model
from tests.conftest import compose_config
from tests.trainers import quiet_trainer


def build_for_spec(tmp_path, model: str, spec, *overrides: str):
    """The module of conf/model/<model>.yaml + `overrides` for a made-up data spec."""
    cfg = compose_config([f"model={model}", *overrides], tmp_path / "cfg")
    return build_model(cfg.model, spec)


def build(tmp_path, model: str, dataset: str, *overrides: str):
    """(module, datamodule) from conf/model/<model>.yaml + `overrides` ("model.k=v", ...), as
    a run builds them: the tests check what the benchmark runs."""
    cfg = compose_config([f"model={model}", f"dataset={dataset}", *overrides], tmp_path / "cfg")
    dm = instantiate(cfg.dataset)
    return build_model(cfg.model, dm.spec), dm


def fit(module, dm, steps: int, callbacks: list | None = None) -> None:
    """Train `module` for `steps` optimiser steps with Lightning, no logging or checkpoints
    (`callbacks`, e.g. genbench's EMA, as a run would add them)."""
    trainer = quiet_trainer(max_steps=steps, callbacks=callbacks, limit_val_batches=0)
    trainer.fit(module, datamodule=dm)


def split_bpd(module, dm) -> float:
    """Mean bits/dim of `module.nll` over the whole test split."""
    module.eval()
    with torch.no_grad():
        x, y = dm.split("test")
        return module.nats_to_bpd(module.nll((x, y))).mean().item()


def gaussian_fit_bpd(dm) -> float:
    """Test bits/dim of the best axis-aligned Gaussian fitted to the training split (points)."""
    x, test = dm.split("train")[0], dm.split("test")[0]
    gauss = torch.distributions.Normal(x.mean(0), x.std(0))
    return (-gauss.log_prob(test).sum(1) / (x.shape[1] * math.log(2))).mean().item()


def grid_mass(log_prob, lim: float = 5.0, n: int = 500) -> float:
    """Riemann sum of exp(log_prob) over [-lim, lim]^2."""
    g = torch.linspace(-lim, lim, n)
    xy = torch.cartesian_prod(g, g)
    with torch.no_grad():
        p = torch.exp(log_prob(xy))
    return (p.sum() * (g[1] - g[0]) ** 2).item()


def check_digits_beats_uniform(module, dm, steps: int) -> None:
    """After `steps` of training on digits: test bits/dim at least 1 below uniform over the 17
    levels, and samples of digits' shape, type and levels."""
    fit(module, dm, steps)
    bpd = split_bpd(module, dm)
    assert bpd < math.log2(17) - 1.0, bpd
    with torch.inference_mode():
        s = module.sample(8)
    assert s.shape == (8, 1, 8, 8) and s.dtype == torch.long
    assert s.min() >= 0 and s.max() <= 16


def check_moons_density(module, dm, steps: int) -> None:
    """After `steps` of training on moons: test bits/dim 0.1 below the best axis-aligned
    Gaussian's, a density that integrates to one within 1%, and 2-D float samples."""
    fit(module, dm, steps)
    gauss_bpd = gaussian_fit_bpd(dm)
    bpd = split_bpd(module, dm)
    assert bpd < gauss_bpd - 0.1, (bpd, gauss_bpd)
    module.eval()
    mass = grid_mass(lambda xy: -module.nll((xy, None)))
    assert abs(mass - 1) < 0.01, mass
    with torch.inference_mode():
        s = module.sample(100)
    assert s.shape == (100, 2) and s.dtype == torch.float32


def recomputed_test_bpd(record: dict, out_dir, seed: int = 123) -> float:
    """A run's test bits/dim recomputed by hand from its evaluated checkpoint: module.nll (nats)
    over the test images the run scored (test_nll_index.npy), mean / (D ln 2), with other draws
    than the run's (a stochastic estimator's own noise differs)."""
    from pathlib import Path

    import numpy as np
    from omegaconf import OmegaConf

    out_dir = Path(out_dir)
    cfg = OmegaConf.create(record["config"])
    dm = instantiate(cfg.dataset)
    module = build_model(cfg.model, dm.spec)
    name = record["evaluated_checkpoint"]
    ckpt = out_dir / "checkpoints" / ("last.ckpt" if name == "last" else name)
    module.load_state_dict(torch.load(ckpt, weights_only=False)["state_dict"])
    module.eval()
    index = torch.from_numpy(np.load(out_dir / "test_nll_index.npy"))
    x, y = (t[index] for t in dm.split("test"))
    with torch.inference_mode():
        module.begin_nll_pass(seed)
        torch.manual_seed(seed)
        nats = torch.cat([module.nll((a, b)) for a, b in zip(x.split(128), y.split(128))])
    return nats.double().mean().item() / (dm.spec.num_dims * math.log(2))
