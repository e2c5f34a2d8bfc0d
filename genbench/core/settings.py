"""The evaluation's settings, one object: the schema of conf/eval/*.yaml (their one source of
values: no field has a default here) and what evaluation takes whole."""

from __future__ import annotations

import dataclasses
import difflib
from dataclasses import dataclass
from typing import Any


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

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def replace(self, **changes) -> EvalSettings:
        return dataclasses.replace(self, **changes)
