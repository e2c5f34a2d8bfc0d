"""The step checkpoint at a validation step, validation's own noise, in plain Lightning: the
private API LastCheckpoint relies on (the epoch loop's own "validate after this batch?") and the
order in which Lightning runs the best and last checkpoints."""

from __future__ import annotations

import lightning as L
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from genbench.training.callbacks import RNGStateCheckpoint
from genbench.training.checkpoints import BestCheckpoint, LastCheckpoint, validation_follows
from tests.trainers import quiet_trainer


class Noisy(L.LightningModule):
    """Records the global RNG's draws in training and validation steps."""

    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(2, 1)
        self.train_draws: list[float] = []
        self.val_draws: dict[int, list[float]] = {}

    def training_step(self, batch, batch_idx):
        self.train_draws.append(float(torch.rand(())))
        return self.lin(batch[0]).pow(2).mean()

    def validation_step(self, batch, batch_idx):
        self.val_draws.setdefault(self.global_step, []).append(float(torch.rand(())))
        self.log("val/loss", float(torch.rand(())))

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


class Record(L.Callback):
    def __init__(self):
        self.follows: list[int] = []
        self.validated: list[int] = []
        self.order: list[str] = []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if validation_follows(trainer):
            self.follows.append(trainer.global_step)

    def on_validation_end(self, trainer, pl_module):
        if not trainer.sanity_checking:
            self.validated.append(trainer.global_step)


def _loaders(n_train: int = 40):
    g = torch.Generator().manual_seed(0)
    train = DataLoader(TensorDataset(torch.randn(n_train, 2, generator=g)), batch_size=4)
    val = DataLoader(TensorDataset(torch.randn(8, 2, generator=g)), batch_size=4)
    return train, val


def _fit(tmp_path, max_steps: int, val_every: int, callbacks: list, seed: int = 0) -> Noisy:
    torch.manual_seed(seed)
    module = Noisy()
    trainer = quiet_trainer(
        max_steps=max_steps,
        val_check_interval=val_every,
        check_val_every_n_epoch=None,
        enable_checkpointing=any(isinstance(c, L.pytorch.callbacks.Checkpoint) for c in callbacks),
        callbacks=callbacks,
        default_root_dir=tmp_path,
    )
    trainer.fit(module, *_loaders())
    return module


def test_validation_follows_is_lightnings_own_decision(tmp_path):
    """Asked at on_train_batch_end, the epoch loop's test names exactly the steps Lightning then
    validates at: mid-epoch (every 3 of 10 batches) and at an epoch's last batch (step 30)."""
    record = Record()
    _fit(tmp_path, max_steps=30, val_every=5, callbacks=[record])
    assert record.follows == record.validated == [5, 10, 15, 20, 25, 30]
    record = Record()
    _fit(tmp_path, max_steps=12, val_every=3, callbacks=[record])
    assert record.follows == record.validated == [3, 6, 9, 12]


def test_last_checkpoint_at_a_validation_step_is_written_after_the_best(tmp_path):
    """every_n_train_steps=2, validation every 3: steps 2, 4, 8, 10 are written after their
    training batch, 3, 6, 9, 12 after their validation, holding that validation's best."""
    written: list[tuple[int, str | None]] = []

    class Spy(LastCheckpoint):
        def _save(self, trainer):
            before = self._saved_at
            super()._save(trainer)
            if self._saved_at != before:
                written.append((trainer.global_step, best.best_model_path or None))

    best = BestCheckpoint(
        monitor="val/loss", dirpath=tmp_path / "ck", filename="best_step{step:06d}"
    )
    last = Spy(dirpath=str(tmp_path / "ck"), every_n_train_steps=2)
    _fit(tmp_path, max_steps=12, val_every=3, callbacks=[last, best])  # listed out of order
    assert [s for s, _ in written] == [2, 3, 4, 6, 8, 9, 10, 12]
    ckpt = torch.load(tmp_path / "ck" / "last.ckpt", weights_only=False)
    state = next(v for k, v in ckpt["callbacks"].items() if k.startswith("BestCheckpoint"))
    assert state["best_model_path"] == written[-1][1] == best.best_model_path
    assert ckpt["global_step"] == 12


def test_validation_draws_its_own_noise_and_leaves_trainings_alone(tmp_path):
    """With RNGStateCheckpoint every validation draws the same numbers (common random numbers),
    and training draws the same numbers however often it validates."""
    rng = RNGStateCheckpoint(validation_seed=7)
    often = _fit(tmp_path, max_steps=12, val_every=3, callbacks=[rng])
    rarely = _fit(tmp_path, max_steps=12, val_every=12, callbacks=[RNGStateCheckpoint(7)])
    assert often.train_draws == rarely.train_draws
    draws = list(often.val_draws.values())
    assert len(draws) == 5 and all(d == draws[0] for d in draws)  # sanity check + 4
    other_seed = _fit(tmp_path, max_steps=3, val_every=3, callbacks=[RNGStateCheckpoint(8)])
    assert list(other_seed.val_draws.values())[-1] != draws[0]
    without = _fit(tmp_path, max_steps=12, val_every=3, callbacks=[])
    assert without.train_draws != often.train_draws  # the test can tell the difference
