"""The real-data floor: every sample metric with real images in place of samples, what a
perfect model scores under the same protocol."""

from __future__ import annotations

import torch

from genbench.evaluation.reference import RealData
from genbench.evaluation.sample_metrics import score_samples


def floor_sets(datamodule, num_samples: int, memorisation_samples: int | None, seed: int) -> dict:
    """The real-data floor's sets.

    "fidelity": num_samples training examples from a seeded permutation (all of train when
    smaller): the fidelity metrics, whose bias depends on the sample count, of a perfect model at
    the models' sample count. "generated": the first m validation examples, m =
    memorisation_samples or num_samples (at most the split): real images never trained on,
    scored for memorisation against the same training set and test split as the models' samples,
    so the floor's copy fraction, C_T and authenticity are on the models' scale (the models
    score their first memorisation_samples samples)."""
    train = datamodule.split("train")[0]
    perm = torch.randperm(len(train), generator=torch.Generator().manual_seed(seed))
    val = datamodule.split("val")[0]
    return {
        "fidelity": train[perm[:num_samples]],
        "generated": val[: min(memorisation_samples or num_samples, len(val))],
    }


def score_floor(real: RealData, seed: int) -> tuple[dict, dict]:
    """(metrics, sets): every sample metric of floor_sets in place of samples."""
    s = real.settings
    sets = floor_sets(real.datamodule, s.num_samples, s.memorisation_samples, seed)
    return score_samples(sets["fidelity"], real, seed, memorisation_set=sets["generated"]), sets
