"""The one EMA: Lightning's WeightAveraging with a warm-up decay, checked against a hand loop."""

from __future__ import annotations

import lightning as L
import pytest
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from genbench.training.ema import EMA
from tests.trainers import quiet_trainer

DECAY = 0.9


class Tiny(L.LightningModule):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(3, 1)
        self.register_buffer("seen", torch.zeros(()))
        self.trajectory: list[torch.Tensor] = []

    def training_step(self, batch, batch_idx):
        self.seen += 1  # a buffer: follows the live model, not averaged
        return ((self.lin(batch[0]) - 1) ** 2).mean()

    def on_train_batch_end(self, outputs, batch, batch_idx):
        self.trajectory.append(torch.cat([p.detach().flatten() for p in self.parameters()]))

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def test_ema_matches_a_hand_computed_average_and_checkpoints_hold_it(tmp_path):
    torch.manual_seed(0)
    loader = DataLoader(TensorDataset(torch.randn(40, 3)), batch_size=4)
    module, ema = Tiny(), EMA(decay=DECAY)
    trainer = quiet_trainer(
        max_steps=10,
        enable_checkpointing=True,
        callbacks=[ema, ModelCheckpoint(tmp_path, "{step}", every_n_train_steps=10)],
        default_root_dir=tmp_path,
    )
    trainer.fit(module, loader)
    # Hand loop: first update copies; then lerp with rate 1 - min(decay, (1 + n) / (10 + n)).
    avg = module.trajectory[0].clone()
    for n, w in enumerate(module.trajectory[1:], start=1):
        avg += (1 - min(DECAY, (1 + n) / (10 + n))) * (w - avg)
    after = torch.cat([p.detach().flatten() for p in module.parameters()])
    torch.testing.assert_close(after, avg)  # on_train_end leaves the average in the model
    assert not torch.allclose(after, module.trajectory[-1])
    assert module.seen.item() == 10  # buffers were not averaged

    # A checkpoint written during training: state_dict = the average, the live weights beside.
    ckpt = torch.load(tmp_path / "step=10.ckpt", weights_only=False)

    def flat(state: dict) -> torch.Tensor:
        return torch.cat([state[k].flatten() for k in ("lin.weight", "lin.bias")])

    torch.testing.assert_close(flat(ckpt["state_dict"]), avg)
    torch.testing.assert_close(flat(ckpt["current_model_state"]), module.trajectory[-1])


class WithBatchNorm(L.LightningModule):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Linear(4, 1))
        self.register_buffer("mask", torch.ones(4))  # any other buffer: copied, not averaged
        self.stats: list[torch.Tensor] = []

    def training_step(self, batch, batch_idx):
        self.mask.add_(1.0)
        return ((self.net(batch[0]) - 1) ** 2).mean()

    def on_train_batch_end(self, outputs, batch, batch_idx):
        bn = self.net[1]
        self.stats.append(torch.cat([bn.running_mean, bn.running_var]).clone())

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def test_batch_norm_statistics_are_averaged_with_the_weights_other_buffers_copied(tmp_path):
    torch.manual_seed(0)
    loader = DataLoader(TensorDataset(torch.randn(40, 3) * 3 + 2), batch_size=4)
    module = WithBatchNorm()
    trainer = quiet_trainer(max_steps=10, callbacks=[EMA(decay=DECAY)], default_root_dir=tmp_path)
    trainer.fit(module, loader)
    avg = module.stats[0].clone()
    for n, s in enumerate(module.stats[1:], start=1):
        avg += (1 - min(DECAY, (1 + n) / (10 + n))) * (s - avg)
    bn = module.net[1]
    torch.testing.assert_close(torch.cat([bn.running_mean, bn.running_var]), avg)
    assert not torch.allclose(avg, module.stats[-1])  # the live statistics differ
    assert module.mask[0].item() == 11  # copied from the live model


class Recorder(L.Callback):
    """After the EMA's update at each batch end: the live and the averaged weights, flat."""

    def __init__(self, ema: EMA):
        self.ema, self.live, self.averaged = ema, [], []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        average = self.ema._average_model.module  # Lightning keeps it there between swaps
        self.live.append(torch.cat([p.detach().flatten() for p in pl_module.parameters()]))
        self.averaged.append(torch.cat([p.detach().flatten() for p in average.parameters()]))


def measured_decays(decay: float, updates: int) -> list[float]:
    """The decay each EMA update applied, measured from the weights of a float64 fit of
    `updates` steps: update k sets a_k = d_k a_(k-1) + (1 - d_k) w_k, so d_k is the
    least-squares ratio of a_k - w_k to a_(k-1) - w_k. Index k: k updates before it (0: the
    first update, a copy, has none)."""
    torch.manual_seed(0)
    loader = DataLoader(TensorDataset(torch.randn(4 * updates, 3, dtype=torch.float64)), 4)
    ema = EMA(decay=decay)
    recorder = Recorder(ema)
    trainer = quiet_trainer(max_steps=updates, callbacks=[ema, recorder])
    trainer.fit(Tiny().double(), loader)
    out = [float("nan")]
    for k in range(1, updates):
        a, a_before, w = recorder.averaged[k], recorder.averaged[k - 1], recorder.live[k]
        out.append(float(((a - w) @ (a_before - w)) / ((a_before - w) @ (a_before - w))))
    return out


def test_a_run_records_the_decay_its_evaluated_weights_last_got(vae_run):
    """The footer's 'EMA decay 0.999' is the target; with the warm-up, what the evaluated
    weights last got is less: recorded per run (metrics.ema_decay_applied) and shown in the
    table's footer. It equals the decay an EMA of the same target measurably applies at that
    update (the VAE's evaluated checkpoint at step s had s updates, s - 1 before its last)."""
    import re

    from genbench.core.results import read_results
    from genbench.reporting.aggregate import aggregate
    from genbench.reporting.table_footer import footer

    record = read_results(vae_run / "results.json")  # conftest.VAE_RUN: the smoke presets
    name = record["evaluated_checkpoint"]
    step = int(re.search(r"step(\d+)", name).group(1)) if "step" in name else None
    step = step or record["metrics"]["train_steps"]  # "last": every step's update
    decay = record["config"]["callbacks"]["ema"]["decay"]
    applied = measured_decays(decay, step)[step - 1]
    assert record["metrics"]["ema_decay_applied"] == pytest.approx(applied, abs=1e-9)
    assert applied < decay - 0.01  # the warm-up still shows
    (weights,) = [line for line in footer(aggregate([record])) if line.startswith("Weights")]
    assert f"{applied:.4f}" in weights
