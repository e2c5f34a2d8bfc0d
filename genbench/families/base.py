"""GenerativeModule: the one interface evaluation, logging and tables rely on
(docs/architecture.md)."""

from __future__ import annotations

import inspect
from typing import ClassVar

import lightning as L
import torch
from hydra.utils import get_class, instantiate

from genbench.core.spec import DataSpec
from genbench.maths.distributions import bits_per_dim, levels_to_unit

NLL_KINDS = ("exact", "bound", "estimate", "none")


class GenerativeModule(L.LightningModule):
    """Base of every family.

    Subclasses set `family` and `nll_kind`, implement `sample`, `nll` (unless
    nll_kind is "none") and `sampling_cost`, and train however they like.
    """

    family: ClassVar[str] = ""
    nll_kind: ClassVar[str] = "none"
    # Metric ModelCheckpoint selects on; None keeps only the last checkpoint.
    checkpoint_monitor: ClassVar[str | None] = "val/nll_bpd"
    # The hardware group's speed switches that the module itself applies, set by the run's
    # SpeedSwitches callback when a fit sets up (genbench/training/speed.py). A module fitted
    # without that callback (the FLOP probe, tests) trains as these say: the stock optimiser
    # and layout.
    fused_optimizer: bool = False
    channels_last: bool = False

    def __init__(self, spec: DataSpec | dict):
        super().__init__()
        if self.nll_kind not in NLL_KINDS:
            raise ValueError(
                f"{type(self).__name__}.nll_kind={self.nll_kind!r}; valid: {NLL_KINDS}"
            )
        if isinstance(spec, dict):  # as stored in a checkpoint's hyper-parameters
            spec = DataSpec(**{**spec, "shape": tuple(spec["shape"])})
        self.spec = spec
        # Collects the subclass's constructor arguments too; the spec is kept as a plain
        # dict so checkpoints load without unpickling genbench classes.
        self.save_hyperparameters(ignore=["spec"])
        self.hparams["spec"] = spec.to_dict()
        self.val_examples_scored: int | None = None  # examples the last validation scored

    # --- the interface -------------------------------------------------------------
    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """n samples in data space: long (n, C, H, W) in [0, K) or float (n, D)."""
        raise NotImplementedError

    def nll(self, batch) -> torch.Tensor:
        """Per-example NLL (B,) in nats of the discrete data (of the density, for points)."""
        raise NotImplementedError(f"{self.family} has nll_kind='none'")

    def sampling_cost(self) -> dict:
        """{'nfe': network evaluations per sample, 'sampler': its label, ...} for the configured
        sampler; a forward pass counts one, a gradient step two (forward and backward)."""
        raise NotImplementedError

    def nll_estimator(self) -> dict:
        """What `nll` computes: {"name": ..., **its settings} (ODE solver and steps, IWAE k,
        timestep proposal and count, AIS ladder, dequantisation draws). Validation selects the
        checkpoint with this same estimator (on fewer images), so results.json's
        metrics.selection and metrics.nll_estimator show the same dict. A family with settings
        should list them; this default names the method only."""
        if self.nll_kind == "none":
            raise NotImplementedError(f"{self.family} has nll_kind='none'")
        return {"name": f"{type(self).__name__}.nll"}

    def begin_nll_pass(self, seed: int) -> None:
        """Called before one pass of `nll` over a split (a validation, a test evaluation) with a
        seed shared by every device: a term common to all examples (the EBM's log Z) is
        estimated once per pass from it, the same on every rank. Most families need nothing."""

    def configure_sampler(self, sampler: str, steps: int) -> None:
        """Sample with `sampler` at `steps` steps from now on (quality-vs-compute curves).

        Families with one fixed sampler keep the default, which refuses in one line."""
        raise ValueError(
            f"{self.family} has one sampler ({self.sampling_cost().get('sampler')}); "
            f"sampler={sampler!r} steps={steps} does not apply"
        )

    @property
    def training_cycle(self) -> int:
        """Batches after which the training step's work repeats (the FLOP probe counts whole
        cycles): 1, except where a family alternates, e.g. the GAN's d_steps."""
        return 1

    def configure_optimizers(self):
        """The optimiser and (optional) step-wise schedule of the model config: `optimizer` (a
        config with _target_, e.g. torch.optim.Adam, and its arguments but the parameters) over
        every parameter, `scheduler` (null, or a config with _target_ and its arguments but the
        optimiser). Families with several optimisers (the GAN) override this."""
        hp = self.hparams
        opt = self.make_optimizer(hp.optimizer, self.parameters())
        if not hp.get("scheduler"):
            return opt
        sched = instantiate(hp.scheduler, optimizer=opt)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}

    def make_optimizer(self, optimizer: dict, params) -> torch.optim.Optimizer:
        """The optimiser `optimizer` ({"_target_": its class, **its arguments but the
        parameters}) over `params`. Every optimiser a family builds comes from here, so the
        hardware group's `fused_optimizer` (one kernel for the whole update) applies in one
        place; it refuses an optimiser without a fused implementation rather than ignore it."""
        extra = {}
        if self.fused_optimizer:
            cls = get_class(optimizer["_target_"])
            if "fused" not in inspect.signature(cls).parameters:
                raise ValueError(
                    f"hardware.fused_optimizer=true: {optimizer['_target_']} takes no fused "
                    "argument; valid: an optimiser that does (torch.optim.Adam, AdamW, SGD) or "
                    "hardware.fused_optimizer=false"
                )
            extra["fused"] = True
        return instantiate(optimizer, params=params, **extra)

    def on_after_batch_transfer(self, batch, dataloader_idx: int):
        """Image batches (4-D tensors) in channels_last when the run's switch says so, the
        layout of the weights (SpeedSwitches converts those); anything else as it comes."""
        if not self.channels_last or not isinstance(batch, (list, tuple)):
            return batch
        return type(batch)(
            t.contiguous(memory_format=torch.channels_last)
            if isinstance(t, torch.Tensor) and t.dim() == 4
            else t
            for t in batch
        )

    def nll_diagnostics(self) -> dict:
        """Extra results.json metrics about how the NLL was estimated (e.g. an AIS ladder)."""
        return {}

    def shared_nll_stderr_nats(self) -> float:
        """Standard error (nats) of a term shared by every example's NLL, e.g. an AIS log Z.

        Evaluation adds it in quadrature to the spread over examples; 0 for most families.
        """
        return 0.0

    # --- logging ----------------------------------------------------------------------
    def log(self, name: str, value, *args, **kwargs) -> None:
        """LightningModule.log (and so log_dict), except that a training step's per-step value
        is dropped on the steps whose values no logger receives.

        Lightning hands training metrics to the loggers every `trainer.log_every_n_steps`
        steps, but books every value of every step (detach, metadata, device moves; ~0.1 ms a
        value on a CPU, a few per cent of a small model's step). Values logged with
        on_epoch=True (averaged over the epoch), outside training_step, or by positional
        arguments pass through. Between logging steps the progress bar and
        trainer.callback_metrics keep the last logged training values."""
        if not args and self._unrecorded_training_step(kwargs):
            return
        super().log(name, value, *args, **kwargs)

    def _unrecorded_training_step(self, kwargs: dict) -> bool:
        """Whether this is training_step on a step whose per-step values no logger receives."""
        if self._current_fx_name != "training_step" or self._trainer is None:
            return False
        if kwargs.get("on_epoch") or kwargs.get("on_step") is False:
            return False
        trainer = self._trainer
        if trainer.fast_dev_run:
            return False
        # Lightning's own test for "send the step's metrics to the loggers now" (private API;
        # if it moves, every value is logged, as without this method).
        connector = getattr(trainer, "_logger_connector", None)
        should_update = getattr(connector, "should_update_logs", True)
        return not should_update

    # --- shared helpers ------------------------------------------------------------
    def nats_to_bpd(self, nats: torch.Tensor) -> torch.Tensor:
        return bits_per_dim(nats, self.spec.num_dims)

    def to_unit(self, x: torch.Tensor) -> torch.Tensor:
        """Images in [0, K) -> floats in [-1, 1]; points unchanged."""
        if not self.spec.is_image:
            return x.float()
        return levels_to_unit(x, self.spec.num_levels)

    # --- model selection: the test's own estimator on the validation split --------------
    def on_validation_epoch_start(self) -> None:
        self._val_examples = 0

    def validation_step(self, batch, batch_idx: int) -> None:
        """val/nll_bpd by `nll` itself: a cheaper estimator's bias moves with training and
        ranks checkpoints differently from the test (docs/architecture.md)."""
        if self.nll_kind == "none":
            return
        bpd = self.nats_to_bpd(self.nll(batch)).mean()
        self.log("val/nll_bpd", bpd, prog_bar=True, batch_size=len(batch[0]), sync_dist=True)
        self._val_examples += len(batch[0])

    def on_validation_epoch_end(self) -> None:
        count = torch.tensor(float(getattr(self, "_val_examples", 0)), device=self.device)
        self.val_examples_scored = int(self.trainer.strategy.reduce(count, reduce_op="sum"))

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        """What the validations scored travels with the run: one resumed after its last
        validation records the same metrics.selection as an uninterrupted one."""
        checkpoint["val_examples_scored"] = self.val_examples_scored

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        self.val_examples_scored = checkpoint.get("val_examples_scored")

    @staticmethod
    def data(batch) -> torch.Tensor:
        """The data tensor of a (x, y) batch."""
        return batch[0] if isinstance(batch, (tuple, list)) else batch
