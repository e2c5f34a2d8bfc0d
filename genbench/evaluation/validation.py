"""Sample-quality checks logged at every validation, for every family, keyed by data set.

`SampleChecks` draws `num_samples` samples from a fixed generator (the same noise at every
validation, so successive values differ by the model alone) and logs the data set's checks:
8 gaussians -> val/modes_covered and val/high_quality_fraction (genbench.evaluation.modes).

`ValidationFID` logs val/fid (samples against the validation split, in the data set's extractor
features) for the families that select their checkpoint by it (checkpoint_monitor "val/fid": the
GAN), so no family is selected on the test split and none on its last step by default.

`describe_selection` says, for results.json's metrics.selection, what chose the evaluated
checkpoint: the likelihood families' val/nll_bpd is their test estimator (`nll_estimator`) on the
validation split, so it can be held against metrics.nll_estimator.
"""

from __future__ import annotations

from collections.abc import Callable

import lightning as L
import torch
from torch_fidelity import KEY_METRIC_FID
from torch_fidelity.metric_fid import fid_features_to_statistics, fid_statistics_to_metric

from genbench.evaluation.extractors import resolve_extractor
from genbench.evaluation.features import FeatureSet
from genbench.evaluation.modes import mode_coverage

# How many images the validation FID's extractor takes at a time: memory only, the features do
# not depend on it. Not a setting (callbacks.validation_fid has no key for it); the evaluation's
# own is eval.fidelity_batch_size.
FEATURE_BATCH_SIZE = 256

# data set name -> check(samples) -> {metric: value}; one explicit registry.
CHECKS: dict[str, Callable[[torch.Tensor], dict[str, float]]] = {
    "8gaussians": mode_coverage,
}


class _AtFirstValidationBatch(L.Callback):
    """Runs `check` once per validation, after its first batch: inside the validation epoch, so
    with the weights validation sees (the EMA's average is swapped in at the epoch's start and out
    at its end, by a callback that may come before this one)."""

    def on_validation_batch_end(
        self, trainer, pl_module, outputs, batch, batch_idx: int, dataloader_idx: int = 0
    ) -> None:
        if batch_idx == 0 and dataloader_idx == 0 and not trainer.sanity_checking:
            self.check(trainer, pl_module)

    def check(self, trainer: L.Trainer, pl_module) -> None:
        raise NotImplementedError


class SampleChecks(_AtFirstValidationBatch):
    """Log the data set's sample checks under val/<name> at each validation."""

    def __init__(self, num_samples: int, seed: int):
        self.num_samples, self.seed = num_samples, seed

    def check(self, trainer: L.Trainer, pl_module) -> None:
        check = CHECKS.get(pl_module.spec.name)
        if check is None or self.num_samples <= 0:
            return
        gen = torch.Generator(device=pl_module.device).manual_seed(self.seed)
        with torch.no_grad():
            samples = pl_module.sample(self.num_samples, generator=gen)
        for key, value in check(samples).items():
            pl_module.log(f"val/{key}", float(value), batch_size=1, sync_dist=True)


def describe_selection(monitor: str | None, module, callbacks: list) -> dict:
    """metrics.selection: {metric, estimator, split, examples} of the checkpoint rule in force;
    monitor None: the last checkpoint, chosen by no estimate."""
    if monitor is None:
        return {"metric": None, "rule": "last checkpoint"}
    if monitor == "val/nll_bpd":
        estimator, examples = module.nll_estimator(), module.val_examples_scored
    elif monitor == ValidationFID.MONITOR:
        fid = next(c for c in callbacks if isinstance(c, ValidationFID))
        estimator, examples = fid.estimator(), fid.reference_examples
    else:
        estimator, examples = None, None
    return {
        "metric": monitor,
        "rule": "best of the validations",
        "estimator": estimator,
        "split": "val",
        "examples": examples,
    }


class ValidationFID(_AtFirstValidationBatch):
    """val/fid of `num_samples` samples (the same noise at every validation) against the first
    `max_reference_samples` of the validation split, for modules whose checkpoint_monitor is
    val/fid. The validation features are computed once per run."""

    MONITOR = "val/fid"

    def __init__(
        self,
        num_samples: int,
        seed: int,
        max_reference_samples: int | None,
        cache_dir: str,
        inception_download: bool | None = None,
        inception_weights: str | None = None,
    ):
        """inception_download / inception_weights: eval.inception_download and
        eval.inception_weights (None in the configs of runs from before they were passed:
        no download, torch-fidelity's own cache)."""
        self.num_samples, self.seed = num_samples, seed
        self.max_reference_samples, self.cache_dir = max_reference_samples, cache_dir
        self.inception_download, self.inception_weights = inception_download, inception_weights
        self._features: FeatureSet | None = None
        self._reference: dict | None = None
        self.reference_examples: int | None = None

    def estimator(self) -> dict:
        extractor = self._features.extractor.name if self._features is not None else None
        return {"name": "FID", "num_samples": self.num_samples, "features": extractor}

    def _reference_statistics(self, trainer: L.Trainer, pl_module) -> dict:
        if self._reference is None:
            datamodule = trainer.datamodule
            extractor = resolve_extractor(
                datamodule,
                self.cache_dir,
                inception_download=bool(self.inception_download),
                inception_path=self.inception_weights,
            )
            self._features = FeatureSet(
                extractor,
                device=pl_module.device,
                batch_size=FEATURE_BATCH_SIZE,
                cache_dir=self.cache_dir,
            )
            val = datamodule.split("val")[0][: self.max_reference_samples]
            self.reference_examples = len(val)
            layer = self._features.layers["fid"]
            self._reference = fid_features_to_statistics(self._features(val)[layer])
        return self._reference

    def check(self, trainer: L.Trainer, pl_module) -> None:
        if getattr(pl_module, "checkpoint_monitor", None) != self.MONITOR or self.num_samples <= 0:
            return
        reference = self._reference_statistics(trainer, pl_module)
        gen = torch.Generator(device=pl_module.device).manual_seed(self.seed)
        with torch.no_grad():
            samples = pl_module.sample(self.num_samples, generator=gen)
        features = self._features(samples)[self._features.layers["fid"]]
        if not torch.isfinite(features).all():  # a diverged generator: never the best
            fid = float("inf")
        else:
            stats = fid_features_to_statistics(features)
            fid = float(fid_statistics_to_metric(reference, stats, verbose=False)[KEY_METRIC_FID])
        pl_module.log(self.MONITOR, fid, batch_size=1, sync_dist=True)
