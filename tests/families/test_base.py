"""GenerativeModule's shared behaviour: training values are booked only when a logger gets them."""

from __future__ import annotations

import csv

import lightning as L
from hydra.utils import get_class, instantiate
from lightning.pytorch.loggers import CSVLogger
from omegaconf import OmegaConf

from tests.conftest import compose_config
from tests.trainers import quiet_trainer


def _fit(module, dm, out_dir) -> tuple[list[dict], float]:
    """Fit 32 steps (15 digits batches an epoch) logging every 10 steps to a CSV file: its rows,
    and the train/loss in trainer.callback_metrics at the end."""
    trainer = quiet_trainer(
        max_steps=32,
        log_every_n_steps=10,
        logger=CSVLogger(out_dir, name="", version=""),
        limit_val_batches=0,
    )
    trainer.fit(module, datamodule=dm)
    with open(out_dir / "metrics.csv") as f:
        return list(csv.DictReader(f)), trainer.callback_metrics["train/loss"].item()


def test_loggers_receive_what_they_would_with_every_value_booked(tmp_path):
    """The same run with Lightning's own `log` (every value of every step booked) writes the same
    rows: the per-step values of the logging steps and the epoch means of every step."""
    cfg = compose_config(["model=vae", "dataset=digits", "model.hidden=16"], tmp_path)
    params = OmegaConf.to_container(cfg.model)
    target = get_class(params.pop("_target_"))  # conf/model/vae.yaml's class

    class WithEpochMean(target):
        def training_step(self, batch, batch_idx):
            # Averaged over the epoch: must see every step, logging step or not.
            self.log("train/batch_idx", float(batch_idx), on_step=False, on_epoch=True)
            return super().training_step(batch, batch_idx)

    class BooksEveryValue(WithEpochMean):
        def log(self, *args, **kwargs):
            L.LightningModule.log(self, *args, **kwargs)

    runs = {}
    for cls in (WithEpochMean, BooksEveryValue):
        L.seed_everything(0)
        dm = instantiate(cfg.dataset)
        runs[cls] = _fit(cls(spec=dm.spec, **params), dm, tmp_path / cls.__name__)
    (rows, last_loss), (rows_every, last_loss_every) = runs.values()
    assert rows == rows_every
    logged = {int(r["step"]): float(r["train/loss"]) for r in rows if r["train/loss"]}
    assert sorted(logged) == [9, 19, 29]  # Lightning sends a step's values every 10 steps
    means = [float(r["train/batch_idx"]) for r in rows if r["train/batch_idx"]]
    assert means == [7.0, 7.0, 0.5]  # the means of 0..14, 0..14, 0..1: no step was dropped
    # Steps 30 and 31 were booked by Lightning's log alone: the last value logged differs.
    assert last_loss == logged[29] != last_loss_every
