"""The evaluation's settings, one object: the schema of conf/eval/*.yaml (their one source of
values: no field has a default here) and what evaluation takes whole."""

from __future__ import annotations

import dataclasses
import difflib
from dataclasses import dataclass
from typing import Any

CI_METHODS = ("normal", "percentile", "basic")  # evaluation/bootstrap.py
CHECKPOINTS = ("best", "last")
# The least value of each whole-number setting: a wrong one ends the command before training
# starts instead of in the evaluation after it (eval.num_samples=-5 trained, then torch.cat
# failed). None, where the type allows it, means "all".
AT_LEAST = {
    "nll_examples": 1,
    "grid_samples": 0,  # 0: no samples.png
    "throughput_samples": 0,  # 0: not measured
    "throughput_batch_size": 1,
    "throughput_warmup_batches": 0,
    "num_samples": 2,  # FID's covariance needs two
    "fidelity_batch_size": 1,
    "kid_subsets": 1,
    "kid_subset_size": 2,
    "isc_splits": 1,
    "prc_neighborhood": 1,
    "bootstrap_resamples": 0,  # 0: no intervals
    "density_coverage_k": 1,
    "memorisation_samples": 1,
    "ct_cells": 1,
    "ct_min_generated": 0,
    "max_reference_samples": 1,
    "max_train_samples": 1,
}


@dataclass
class EvalSettings:
    """Every eval.* key (conf/eval/default.yaml says what each means)."""

    checkpoint: str  # best | last
    nll: bool
    nll_examples: int | None  # a random subset of the test split (from sample_seed); None = all
    sample_seed: int
    grid_samples: int
    throughput_samples: int
    throughput_batch_size: int
    throughput_warmup_batches: int
    fidelity: bool
    num_samples: int
    fidelity_batch_size: int
    kid_subsets: int
    kid_subset_size: int
    isc_splits: int
    prc_neighborhood: int
    bootstrap_resamples: int  # fid_ci, kid_ci; 0 = no intervals
    ci_level: float
    ci_method: str  # normal | percentile | basic (evaluation/bootstrap.py)
    density_coverage_k: int
    memorisation: bool
    memorisation_samples: int | None  # the first N generated samples; None = all
    memorisation_pixels: bool  # also in pixel space, for images
    copy_percentile: float
    ct_cells: int
    ct_min_generated: int
    max_reference_samples: int | None
    max_train_samples: int | None
    cache_dir: str
    inception_weights: str | None
    inception_download: bool
    curve: Any  # family -> [{sampler, steps}]: quality-vs-compute curves (metrics.curve)

    @classmethod
    def from_mapping(cls, values) -> EvalSettings:
        """From a mapping (a composed cfg.eval, a results.json eval_config): a one-line
        ValueError naming a key that is not a setting (and the nearest that is) or one missing."""
        values = dict(values)
        names = [f.name for f in dataclasses.fields(cls)]
        for key in values:
            if key not in names:
                near = difflib.get_close_matches(key, names, n=1)
                hint = f"; did you mean eval.{near[0]}?" if near else ""
                raise ValueError(f"eval.{key} is not an evaluation setting{hint}")
        missing = [n for n in names if n not in values]
        if missing:
            raise ValueError(f"eval settings miss {', '.join(missing)} (conf/eval/default.yaml)")
        return cls(**values)

    def __post_init__(self) -> None:
        """A value no evaluation can use: a one-line ValueError naming the key and what is
        valid."""
        for name, least in AT_LEAST.items():
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or value < least):
                raise ValueError(f"eval.{name}={value}; valid: an integer >= {least}")
        for name, valid in (("checkpoint", CHECKPOINTS), ("ci_method", CI_METHODS)):
            if getattr(self, name) not in valid:
                raise ValueError(f"eval.{name}={getattr(self, name)!r}; valid: {', '.join(valid)}")
        if not 0 < self.ci_level < 1:
            raise ValueError(f"eval.ci_level={self.ci_level}; valid: 0 < ci_level < 1")
        if not 0 < self.copy_percentile <= 100:
            raise ValueError(f"eval.copy_percentile={self.copy_percentile}; valid: 0 < p <= 100")
        k = max(self.prc_neighborhood, self.density_coverage_k)
        if self.fidelity and self.num_samples <= k:
            raise ValueError(
                f"eval.num_samples={self.num_samples}; valid: more than the k-NN balls' k "
                f"(eval.prc_neighborhood, eval.density_coverage_k: {k})"
            )

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def replace(self, **changes) -> EvalSettings:
        return dataclasses.replace(self, **changes)
