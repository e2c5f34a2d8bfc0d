"""FLOP budgets: the probe's count against a closed form, and the budget arithmetic."""

from __future__ import annotations

import math
from pathlib import Path

import lightning as L
import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf
from torch import nn
from torch.utils.data import DataLoader, TensorDataset
from torch.utils.flop_counter import FlopCounterMode

from genbench.config import BudgetKind
from genbench.families.build import build_model
from genbench.training.budget import StepCost, probe_flops, trainer_limits
from tests.conftest import CONF_DIR, compose_config
from tests.trainers import quiet_trainer

B, D = 16, 12
# Where the probe runs, as conf/hardware/cpu.yaml says a CPU run trains.
CPU = {
    k: OmegaConf.load(Path(CONF_DIR, "hardware", "cpu.yaml"))[k]
    for k in ("accelerator", "precision")
}


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
    cost = probe_flops(OneLinear(), Data, batches=3, **CPU)
    assert cost.flops_per_batch == 4 * B * D * D
    assert cost.steps_per_batch == 1.0


H, K = 20, 5  # the MLP's hidden width; its outputs and the second player's


class TwoLayer(L.LightningModule):
    """An MLP D -> H -> K with biases and a ReLU, loss = sum of outputs. By hand, per batch:
    forward 2BDH + 2BHK (the matmuls; bias adds and the ReLU count nothing); backward 2BHK for
    the second weight's gradient and 2BHK for the gradient into the hidden layer, 2BDH for the
    first weight's (the input needs none)."""

    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(D, H), nn.ReLU(), nn.Linear(H, K))

    def training_step(self, batch, batch_idx):
        return self.net(batch[0]).sum()

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=0.1)


def test_probe_counts_a_two_layer_mlp_as_counted_by_hand():
    cost = probe_flops(TwoLayer(), Data, batches=3, **CPU)
    forward = 2 * B * D * H + 2 * B * H * K
    backward = 2 * B * H * K + 2 * B * H * K + 2 * B * D * H
    assert cost.flops_per_batch == forward + backward == 4 * B * D * H + 6 * B * H * K
    assert cost.steps_per_batch == 1.0


class TwoPlayers(L.LightningModule):
    """A GAN's shape with d_steps = 2 (a cycle of two batches): every batch steps the first
    player, loss sum(W_1 x) (4BD^2 FLOPs by hand), the cycle's second batch also the second,
    loss sum(W_2 x) with W_2 K x D (4BDK): 8BD^2 + 4BDK FLOPs and 3 optimiser steps a cycle."""

    training_cycle = 2

    def __init__(self):
        super().__init__()
        self.automatic_optimization = False
        self.first = nn.Linear(D, D, bias=False)
        self.second = nn.Linear(D, K, bias=False)

    def training_step(self, batch, batch_idx):
        players = [0, 1] if batch_idx % 2 == 1 else [0]
        for i in players:
            opt, layer = self.optimizers()[i], (self.first, self.second)[i]
            opt.zero_grad()
            self.manual_backward(layer(batch[0]).sum())
            opt.step()

    def configure_optimizers(self):
        return [torch.optim.SGD(m.parameters(), lr=0.1) for m in (self.first, self.second)]


def test_budget_of_a_two_player_cycle_trains_the_flops_counted_by_hand():
    """probe_flops over 3 batches rounds up to 2 whole cycles (3 batches would count the first
    player 3 times, the second once); a budget of 2 cycles then trains 4 batches, 6 optimiser
    steps, whose train_flops (per-step cost x steps, as results.json reports it) are 2 cycles'
    FLOPs by hand."""
    cycle_flops = 8 * B * D * D + 4 * B * D * K
    cost = probe_flops(TwoPlayers(), Data, batches=3, **CPU)
    assert cost.flops_per_batch == cycle_flops / 2 and cost.steps_per_batch == 1.5
    budget = _budget(kind=BudgetKind.flops, flops=1.75 * cycle_flops, validations=1)
    limits = trainer_limits(budget, cost)
    module = TwoPlayers()
    trainer = quiet_trainer(max_steps=limits["max_steps"], **NO_VALIDATION)
    trainer.fit(module, datamodule=Data())
    assert trainer.fit_loop.epoch_loop.batch_progress.total.completed == 4
    assert cost.flops_per_step * trainer.global_step == 2 * cycle_flops


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
        cost = probe_flops(OneLinear(), OneBatchData, batches=3, **CPU)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    assert cost.flops_per_batch == 4 * B * D * D and cost.steps_per_batch == 1.0


def test_gan_probe_counts_both_players(tmp_path):
    cfg = compose_config(["model=gan", "dataset=digits"], tmp_path)
    dm = instantiate(cfg.dataset)
    hw = cfg.hardware
    cost = probe_flops(
        build_model(cfg.model, dm.spec),
        lambda: instantiate(cfg.dataset),
        2,
        hw.accelerator,
        hw.precision,
    )
    assert cost.steps_per_batch == 2.0  # a discriminator and a generator step per batch
    assert cost.flops_per_batch > 0  # per step, by hand: the two-player test above


NO_VALIDATION = dict(limit_val_batches=0, num_sanity_val_steps=0)


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
    FLOPs PyTorch counts over the real training fit, and lands within one batch of the budget.
    One counter measures both, so this shows that the probe's few batches stand for the fit
    (every family's step costs the same each cycle); that the counter counts what the FLOPs
    are is shown by hand on the tiny networks above."""
    cfg = compose_config([f"model={model}", "dataset=digits", "budget=flops"], tmp_path)
    module = build_model(cfg.model, instantiate(cfg.dataset).spec)
    hw = cfg.hardware
    cost = probe_flops(
        module,
        lambda: instantiate(cfg.dataset),
        cfg.budget.probe_batches,
        hw.accelerator,
        hw.precision,
    )
    batches = 2 * cfg.model.get("d_steps", 1)
    flops = (batches - 0.5) * cost.flops_per_batch
    budget = _budget(kind=BudgetKind.flops, flops=flops, validations=1)
    limits = trainer_limits(budget, cost)
    trainer = quiet_trainer(max_steps=limits["max_steps"], **NO_VALIDATION)
    with FlopCounterMode(display=False) as counter:
        trainer.fit(module, datamodule=instantiate(cfg.dataset))
    assert trainer.fit_loop.epoch_loop.batch_progress.total.completed == batches
    train_flops = cost.flops_per_step * trainer.global_step
    assert train_flops == pytest.approx(counter.get_total_flops(), rel=1e-9)
    assert 0 <= train_flops - budget.flops < cost.flops_per_batch
