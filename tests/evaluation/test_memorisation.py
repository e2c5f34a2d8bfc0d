"""Memorisation metrics and density/coverage: hand computations on tiny examples, a brute-force
loop, and models that replay data through evaluate(): jittered training images are flagged,
held-out test images are not."""

from __future__ import annotations

import math

import pytest
import torch

from genbench.evaluation.density_coverage import density_coverage
from genbench.evaluation.evaluate import evaluate
from genbench.evaluation.memorisation import (
    authenticity,
    memorisation_metrics,
    nn_copy_fraction,
    train_reference,
)
from genbench.evaluation.neighbours import nearest
from genbench.evaluation.reference import REFERENCE_SEED
from genbench.families.base import GenerativeModule
from tests.conftest import datamodule, eval_settings


def column(*values):
    return torch.tensor(values, dtype=torch.float64)[:, None]


def test_ct_score_equals_hand_computation():
    # Two k-means cells; distances to the cell's nearest training point are exact binary
    # fractions, so the Mann-Whitney ties below are ties in floating point too.
    train = column(0, 1, 2, 3, 100, 101, 102, 103)
    test = column(0.5, 2.25, 100.25, 101.5, 104)  # A: .5 .25   B: .25 .5 1
    gen = column(0.125, 1.0625, 2.875, 100.75, 102.5, 98.5, 103.0625)
    # A: gen .125 .0625 .125 vs test .5 .25 -> U = 0 (no generated distance is larger)
    z_a = (0 - 3 * 2 / 2 + 0.5) / math.sqrt(3 * 2 * (3 + 2 + 1) / 12)
    # B: gen .25 .5 1.5 .0625 vs test .25 .5 1 -> U = 0.5 + 1.5 + 3 + 0 = 5
    z_b = (5 - 4 * 3 / 2 + 0.5) / math.sqrt(4 * 3 * (4 + 3 + 1) / 12)
    reference = train_reference(test, train, 2, REFERENCE_SEED)
    copy_percentile = eval_settings().copy_percentile  # nn_copy_fraction's, not C_T's

    def ct_score(min_generated: int) -> float | None:
        m = memorisation_metrics(
            gen,
            test,
            train,
            reference,
            copy_percentile=copy_percentile,
            ct_min_generated=min_generated,
        )
        return m["ct_score"]

    assert ct_score(3) == pytest.approx((2 / 5) * z_a + (3 / 5) * z_b, abs=1e-12)
    assert ct_score(4) == pytest.approx(z_b)
    assert ct_score(5) is None


def test_authenticity_and_copy_fraction_equal_hand_computation():
    train = column(0, 1, 5)  # nearest other training point: 1, 1, 4
    gen = column(0.25, 10, 9, 1, -2)  # d = .25 < 1, 5 > 4, 4 = 4 (tie), 0 (copy), 2 > 1
    d, idx = nearest(gen, train)
    assert authenticity(d[:, 0], idx[:, 0], train) == pytest.approx(2 / 5)

    test_to_train = torch.arange(1, 101, dtype=torch.float64)  # 1st percentile: 1.99
    gen_to_train = torch.tensor([0.5, 1.98, 2.0, 50.0])
    assert nn_copy_fraction(gen_to_train, test_to_train, 1.0) == 0.5


def test_density_coverage_equal_brute_force_loop():
    g = torch.Generator().manual_seed(0)
    real, fake = torch.randn(30, 3, generator=g), torch.randn(20, 3, generator=g) + 0.5
    k = 3
    dist = lambda a, b: math.dist(a.tolist(), b.tolist())  # noqa: E731
    radius = [sorted(dist(r, s) for s in real)[k] for r in real]  # [0] is r itself
    inside = sum(dist(f, r) < radius[j] for f in fake for j, r in enumerate(real))
    covered = sum(min(dist(f, r) for f in fake) < radius[j] for j, r in enumerate(real))
    m = density_coverage(fake, real, k)
    assert m["density"] == pytest.approx(inside / (k * len(fake)), abs=1e-12)
    assert m["coverage"] == pytest.approx(covered / len(real), abs=1e-12)
    assert density_coverage(real, real, k)["coverage"] == 1.0
    with_nan = density_coverage(torch.cat([fake, torch.full((1, 3), float("nan"))]), real, k)
    assert with_nan["coverage"] == m["coverage"]  # a NaN sample covers nothing
    assert with_nan["density"] == pytest.approx(m["density"] * 20 / 21)


class Replay(GenerativeModule):
    """A "model" that draws examples from a fixed pool, each pixel optionally jittered by one
    level (-1, 0 or +1, uniformly; clamped to the valid levels)."""

    family = "replay"
    nll_kind = "none"

    def __init__(self, spec, pool: torch.Tensor, jitter: bool):
        super().__init__(spec)
        self.register_buffer("pool", pool)
        self.jitter = jitter

    def sample(self, n, generator=None):
        x = self.pool[torch.randint(0, len(self.pool), (n,), generator=generator)]
        if self.jitter:
            step = torch.randint(-1, 2, x.shape, generator=generator)
            x = (x + step).clamp(0, self.spec.num_levels - 1)
        return x

    def sampling_cost(self):
        return {"nfe": 0, "sampler": "replay"}


FAST = dict(
    nll=False,
    throughput_samples=16,
    throughput_batch_size=16,
    grid_samples=16,
    num_samples=400,
    kid_subsets=5,
    bootstrap_resamples=50,
    max_reference_samples=None,
    ct_cells=10,
)


@pytest.fixture(scope="module")
def digits():
    return datamodule("digits")


def test_jittered_training_images_are_flagged_and_test_images_are_not(digits, tmp_path):
    copier = Replay(digits.spec, digits.split("train")[0], jitter=True)
    fresh = Replay(digits.spec, digits.split("test")[0], jitter=False)
    copied = evaluate(copier, digits, tmp_path / "copier", eval_settings(**FAST))
    held_out = evaluate(fresh, digits, tmp_path / "fresh", eval_settings(**FAST))

    assert copied["nn_copy_fraction_pixels"] > 0.95 and copied["nn_copy_fraction"] > 0.8
    assert copied["ct_score_pixels"] < -5 and copied["ct_score"] < -5
    assert copied["authenticity_pixels"] < 0.05 and copied["authenticity"] < 0.1

    for suffix in ("", "_pixels"):  # test images: as far from train as the test split is
        assert held_out[f"nn_copy_fraction{suffix}"] < 0.05
        assert abs(held_out[f"ct_score{suffix}"]) < 1.5
        assert held_out[f"authenticity{suffix}"] > 0.4
    for m in (copied, held_out):
        assert 0 < m["coverage"] <= 1 and m["density"] > 0
        assert m["fid_ci"][0] < m["fid_ci"][1] and m["kid_ci"][0] < m["kid_ci"][1]
    assert (tmp_path / "copier" / "nearest_neighbours.png").stat().st_size > 0


def test_points_through_evaluate_have_feature_space_memorisation_only(tmp_path):
    dm = datamodule("moons", num_train=1000, num_val=10, num_test=400, seed=3)
    model = Replay(dm.spec, dm.split("train")[0], jitter=False)  # exact copies
    m = evaluate(model, dm, tmp_path, eval_settings(**FAST))
    assert m["fidelity_extractor"] == "coords" and m["is_mean"] is None
    assert m["nn_copy_fraction"] == 1.0 and m["authenticity"] == 0.0 and m["ct_score"] < -5
    assert all(m[f"{k}_pixels"] is None for k in ("nn_copy_fraction", "ct_score", "authenticity"))
    assert (tmp_path / "nearest_neighbours.png").stat().st_size > 0
