"""The claims report (issue 33): the verdict rule on constructed seed values against intervals
computed independently, the intervals' coverage, the claims list, and the report built from
the committed digits runs. No training: every record here is hand-made or committed."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from genbench.reporting.verdicts import (
    CONTRADICTED,
    NOT_MEASURED,
    NOT_SEPARABLE,
    SUPPORTED,
    Estimate,
    sd_interval,
    share_interval,
    t_interval,
    verdict,
)


def by_hand(values) -> tuple[float, float, float]:
    """scipy's own t interval of a mean: t.interval with the standard error of the mean."""
    x = np.asarray(values, dtype=float)
    lo, hi = stats.t.interval(0.95, len(x) - 1, loc=x.mean(), scale=stats.sem(x))
    return float(x.mean()), float(lo), float(hi)


# --- the intervals -------------------------------------------------------------------------


def test_the_t_interval_is_scipys_interval_of_the_mean():
    for values in ([1.0, 2.0, 4.0], [10.0, 10.5], [3.1, 2.9, 3.3, 3.0, 2.5]):
        est = t_interval(values)
        assert (est.value, est.low, est.high) == pytest.approx(by_hand(values), rel=1e-12)
    # three seeds: t_{0.975, 2} = 4.3027 times sd / sqrt(3), sd = 1 here
    est = t_interval([10.0, 11.0, 12.0])
    assert est.high - est.value == pytest.approx(4.302653 / math.sqrt(3), rel=1e-6)


def test_the_t_interval_covers_the_true_mean_95_percent_of_the_time():
    """3 normal seeds, 4000 experiments: a z interval would cover about 80%, sd instead of
    sd / sqrt(n) about 99.8%; the t interval 95%."""
    rng = np.random.default_rng(0)
    hits = [
        (e.low <= 5.0 <= e.high) for e in (t_interval(rng.normal(5, 2, 3)) for _ in range(4000))
    ]
    assert np.mean(hits) == pytest.approx(0.95, abs=0.015)


def test_the_sd_interval_covers_the_true_sd_95_percent_of_the_time():
    rng = np.random.default_rng(1)
    hits = [
        (e.low <= 2.0 <= e.high) for e in (sd_interval(rng.normal(0, 2, 3)) for _ in range(4000))
    ]
    assert np.mean(hits) == pytest.approx(0.95, abs=0.015)
    est = sd_interval([0.0, 1.0, 2.0])  # sd 1: [sqrt(2 / 7.3778), sqrt(2 / 0.050636)]
    assert (est.low, est.high) == pytest.approx((0.52065, 6.28478), rel=1e-4)


def test_the_share_interval_is_clopper_pearson():
    assert share_interval(0, 3).high == pytest.approx(1 - 0.025 ** (1 / 3), rel=1e-9)
    assert share_interval(3, 3).low == pytest.approx(0.025 ** (1 / 3), rel=1e-9)
    est = share_interval(2, 10)  # R's binom.test(2, 10): 0.02521073 0.55609546
    assert (est.value, est.low, est.high) == pytest.approx((0.2, 0.02521073, 0.55609546), rel=1e-6)


# --- the rule ------------------------------------------------------------------------------


def test_an_ordering_is_supported_only_when_the_intervals_of_the_means_are_disjoint():
    """[10, 11, 12] against [15, 16, 17]: t intervals [8.52, 13.48] and [13.52, 18.48] are
    disjoint (with sd in place of sd / sqrt(3) they would overlap); against [14, 15, 16] they
    overlap (z in place of t would separate them)."""
    low = t_interval([10.0, 11.0, 12.0])
    assert verdict(low, {"b": t_interval([15.0, 16.0, 17.0])}, "lower")[0] == SUPPORTED
    assert verdict(low, {"b": t_interval([15.0, 16.0, 17.0])}, "higher")[0] == CONTRADICTED
    assert verdict(low, {"b": t_interval([14.0, 15.0, 16.0])}, "lower")[0] == NOT_SEPARABLE
    assert verdict(low, {"b": t_interval([14.0, 15.0, 16.0])}, "higher")[0] == NOT_SEPARABLE
    high = t_interval([14.0, 15.0, 16.0])  # the same pair, the other way round
    assert verdict(high, {"b": low}, "higher")[0] == NOT_SEPARABLE
    assert verdict(high, {"b": low}, "lower")[0] == NOT_SEPARABLE


def test_a_group_claim_needs_every_pair_and_one_counter_example_refutes_it():
    a = t_interval([1.0, 1.1, 1.2])
    far = t_interval([5.0, 5.1, 5.2])
    near = t_interval([1.0, 1.2, 1.4])
    below = t_interval([-5.0, -5.1, -5.2])
    assert verdict(a, {"b": far, "c": far}, "lower") == (
        SUPPORTED,
        {"b": SUPPORTED, "c": SUPPORTED},
    )
    assert verdict(a, {"b": far, "c": near}, "lower")[0] == NOT_SEPARABLE
    assert verdict(a, {"b": far, "c": below}, "lower")[0] == CONTRADICTED
    assert verdict(a, {"b": near, "c": below}, "lower")[0] == CONTRADICTED
    assert verdict(a, {"b": far, "c": Estimate.missing("no run")}, "lower")[0] == NOT_MEASURED
    assert verdict(a, {}, "lower")[0] == NOT_MEASURED
    with pytest.raises(ValueError, match="expects"):
        verdict(a, {"b": far}, "better")
