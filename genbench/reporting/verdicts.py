"""The one rule that turns measurements into a verdict on a claim of the lesson (issue 33).

A family's value of a measure is an Estimate: the value and its 95% interval, made one of a few
ways (over seeds, the run's own, fixed by the protocol, a bootstrap of fitted curves). `verdict`
compares a family's Estimate with those of the families it is claimed to beat or trail; the
report prints its docstring as the rule, so the rule is written in one place.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats

SUPPORTED = "supported"
CONTRADICTED = "contradicted"
NOT_SEPARABLE = "not separable at this scale"
NOT_MEASURED = "not measured"
LEVEL = 0.95


@dataclass(frozen=True)
class Estimate:
    """A family's value of a measure: `value` with its 95% interval [low, high] (None where no
    interval exists, e.g. one run of a metric without a per-run uncertainty), and `basis`: how
    the interval was made, or, where `value` is None, why there is no value."""

    value: float | None
    low: float | None
    high: float | None
    basis: str

    @classmethod
    def missing(cls, why: str) -> Estimate:
        return cls(None, None, None, why)

    @property
    def has_interval(self) -> bool:
        return self.low is not None and self.high is not None


def t_interval(values: list[float]) -> Estimate:
    """Mean over n >= 2 seeds ± t_{0.975, n-1} · sd / sqrt(n) (sd with ddof 1): the interval of
    the mean, not the spread of the seeds."""
    x = np.asarray(values, dtype=float)
    if len(x) < 2:
        raise ValueError(f"t_interval needs two values or more, got {len(x)}")
    half = stats.t.ppf((1 + LEVEL) / 2, len(x) - 1) * x.std(ddof=1) / math.sqrt(len(x))
    mean = float(x.mean())
    return Estimate(mean, mean - half, mean + half, f"mean of {len(x)} seeds, t interval")


def sd_interval(values: list[float]) -> Estimate:
    """The standard deviation over n >= 2 seeds with its 95% chi-square interval
    [s·sqrt((n-1)/q_0.975), s·sqrt((n-1)/q_0.025)] (q: chi-square quantiles, n-1 degrees of
    freedom; exact for normal seeds). With 3 seeds it spans about 0.52 s to 6.3 s."""
    x = np.asarray(values, dtype=float)
    n = len(x)
    if n < 2:
        raise ValueError(f"sd_interval needs two values or more, got {n}")
    s = float(x.std(ddof=1))
    lo_q, hi_q = stats.chi2.ppf([(1 + LEVEL) / 2, (1 - LEVEL) / 2], n - 1)
    return Estimate(
        s, s * math.sqrt((n - 1) / lo_q), s * math.sqrt((n - 1) / hi_q), f"sd of {n} seeds"
    )


def share_interval(hits: int, n: int) -> Estimate:
    """A share hits / n with its 95% Clopper-Pearson interval (exact for a binomial count)."""
    if n < 1:
        raise ValueError("share_interval needs n >= 1")
    lo = 0.0 if hits == 0 else float(stats.beta.ppf((1 - LEVEL) / 2, hits, n - hits + 1))
    hi = 1.0 if hits == n else float(stats.beta.ppf((1 + LEVEL) / 2, hits + 1, n - hits))
    return Estimate(hits / n, lo, hi, f"{hits} of {n} runs, Clopper-Pearson")


def pairwise(subject: Estimate, other: Estimate, expects: str) -> str:
    """One comparison of `verdict`: is the subject's value `expects` ("higher" or "lower")
    than the other's, with disjoint 95% intervals?"""
    if expects not in ("higher", "lower"):
        raise ValueError(f"expects={expects!r}; valid: higher, lower")
    if subject.value is None or other.value is None:
        return NOT_MEASURED
    if not (subject.has_interval and other.has_interval):
        return NOT_SEPARABLE
    above = subject.low > other.high  # the subject's whole interval lies above the other's
    below = subject.high < other.low
    if (above and expects == "higher") or (below and expects == "lower"):
        return SUPPORTED
    if above or below:
        return CONTRADICTED
    return NOT_SEPARABLE


def verdict(subject: Estimate, others: dict[str, Estimate], expects: str) -> tuple[str, dict]:
    """A claim that a family's value is higher (or lower) than that of each family in a
    comparison set, on one data set, is judged by comparing 95% intervals:

    - each family's interval is, with two seeds or more, the mean over seeds
      ± t_{0.975, n-1} · sd / sqrt(n); with one seed, the run's own 95% interval (bits/dim:
      ± 1.96 standard errors over test images; FID and KID: the bootstrap interval over
      generated samples), or none where the metric has no per-run uncertainty; a value fixed
      by the protocol (NFE, FLOPs per step) is its own interval; a spread over seeds has its
      chi-square interval, a share of runs its Clopper-Pearson interval, and the training
      compute to reach a quality its interval over refits of seed-resampled curves;
    - against one family the claim is **supported** when the claimed ordering holds and the
      two intervals do not overlap, **contradicted** when the reverse ordering holds and they
      do not overlap, and **not separable at this scale** otherwise (overlapping intervals, or
      a family with no interval);
    - against a set of families, it is supported only when it is supported against every one,
      contradicted when it is contradicted against at least one (a separated counter-example
      refutes "than each of them"), **not measured** when a family of the set has no value,
      and not separable otherwise.

    A claim about a property (e.g. that a likelihood is exact) is read from the records
    instead; a claim that needs a measurement genbench does not make is "not measured", with
    what is missing. Returns (the verdict, {family: its pairwise verdict})."""
    pairs = {name: pairwise(subject, est, expects) for name, est in others.items()}
    found = set(pairs.values())
    if CONTRADICTED in found:
        return CONTRADICTED, pairs
    if pairs and found == {SUPPORTED}:
        return SUPPORTED, pairs
    if NOT_MEASURED in found or not pairs:
        return NOT_MEASURED, pairs
    return NOT_SEPARABLE, pairs
