"""FLOP budgets: the probe's count against a closed form, and the budget arithmetic."""

from __future__ import annotations

import math
from pathlib import Path

import lightning as L
import pytest
import torch
from hydra.utils import instantiate
from torch import nn
from torch.utils.data import DataLoader, TensorDataset
from torch.utils.flop_counter import FlopCounterMode

from genbench.config import BudgetKind
from genbench.families.build import build_model
from genbench.training.budget import StepCost, probe_flops, trainer_limits
from tests.conftest import CONF_DIR, compose_config

B, D = 16, 12


class OneLinear(L.LightningModule):
    """loss = sum(W x): forward 2BD^2 FLOPs, backward 2BD^2 (dW only; x needs no gradient)."""

    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(D, D, bias=False)

    def training_step(self, batch, batch_idx):
        return self.lin(batch[0]).sum()

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


class Data(L.LightningDataModule):
    def train_dataloader(self):
        return DataLoader(TensorDataset(torch.randn(10 * B, D)), batch_size=B)


def test_probe_counts_forward_and_backward_flops_exactly():
    cost = probe_flops(OneLinear(), Data, batches=3)
    assert cost.flops_per_batch == 4 * B * D * D
    assert cost.steps_per_batch == 1.0


class OneBatchData(L.LightningDataModule):
    def train_dataloader(self):
        return DataLoader(TensorDataset(torch.randn(B, D)), batch_size=B)


def test_probe_counts_its_batches_across_epochs_of_one_batch():
    """A training split of one batch per epoch (a small image folder) ran the probe forever."""
    import signal

    def stop(*_):
        raise TimeoutError("the FLOP probe did not stop after 3 batches")

    previous = signal.signal(signal.SIGALRM, stop)
    signal.alarm(60)
    try:
        cost = probe_flops(OneLinear(), OneBatchData, batches=3)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    assert cost.flops_per_batch == 4 * B * D * D and cost.steps_per_batch == 1.0


def test_gan_probe_counts_both_players(tmp_path):
    cfg = compose_config(["model=gan", "dataset=digits"], tmp_path)
    dm = instantiate(cfg.dataset)
    cost = probe_flops(build_model(cfg.model, dm.spec), lambda: instantiate(cfg.dataset), 2)
    assert cost.steps_per_batch == 2.0  # a discriminator and a generator step per batch
    assert cost.flops_per_step == cost.flops_per_batch / 2 > 0


def _budget(**kw):
    base = {"flops": None, "steps": None, "max_time": None, "max_steps": None}
    base.update({"validations": 4, "val_check_interval": None, **kw})
    return type("Budget", (), base)


def test_flops_budget_stops_within_one_batch_and_spaces_validations():
    cost = StepCost(flops_per_batch=3e9, steps_per_batch=2.0)
    lim = trainer_limits(_budget(kind=BudgetKind.flops, flops=1e12), cost)
    batches = math.ceil(1e12 / 3e9)  # 334: the first batch count that reaches the budget
    assert lim["max_steps"] == 2 * batches and lim["max_time"] is None
    assert 0 <= batches * 3e9 - 1e12 < 3e9
    assert lim["val_check_interval"] == batches // 4


def test_steps_and_time_budgets():
    lim = trainer_limits(_budget(kind=BudgetKind.steps, steps=100), StepCost(1.0, 1.0))
    assert lim == {"max_time": None, "max_steps": 100, "val_check_interval": 25}
    t = _budget(kind=BudgetKind.time, max_time="00:00:01:00", val_check_interval=7)
    assert trainer_limits(t, None) == {
        "max_time": "00:00:01:00",
        "max_steps": -1,
        "val_check_interval": 7,
    }
    with pytest.raises(ValueError, match="budget.flops=0"):
        trainer_limits(_budget(kind=BudgetKind.flops, flops=0), StepCost(1.0, 1.0))


MODEL_CONFIGS = sorted(
    str(p.relative_to(Path(CONF_DIR, "model")).with_suffix(""))
    for p in Path(CONF_DIR, "model").rglob("*.yaml")
)


@pytest.mark.parametrize("model", MODEL_CONFIGS)
def test_every_model_config_trains_to_its_flop_budget_as_counted_over_the_real_fit(model, tmp_path):
    """Every file under conf/model/ (families and variants) under budget=flops, sized to two
    whole training cycles (a GAN's d_steps batches: one generator step in each): the probe's
    per-step cost times the steps taken (train_flops, as results.json reports it) equals the
    FLOPs PyTorch counts over the real training fit, and lands within one batch of the budget."""
    cfg = compose_config([f"model={model}", "dataset=digits", "budget=flops"], tmp_path)
    module = build_model(cfg.model, instantiate(cfg.dataset).spec)
    cost = probe_flops(module, lambda: instantiate(cfg.dataset), cfg.budget.probe_batches)
    batches = 2 * cfg.model.get("d_steps", 1)
    flops = (batches - 0.5) * cost.flops_per_batch
    budget = _budget(kind=BudgetKind.flops, flops=flops, validations=1)
    limits = trainer_limits(budget, cost)
    trainer = L.Trainer(
        max_steps=limits["max_steps"],
        limit_val_batches=0,
        num_sanity_val_steps=0,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    with FlopCounterMode(display=False) as counter:
        trainer.fit(module, datamodule=instantiate(cfg.dataset))
    assert trainer.fit_loop.epoch_loop.batch_progress.total.completed == batches
    train_flops = cost.flops_per_step * trainer.global_step
    assert train_flops == pytest.approx(counter.get_total_flops(), rel=1e-9)
    assert 0 <= train_flops - budget.flops < cost.flops_per_batch
