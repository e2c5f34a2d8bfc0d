"""What a claim of the lesson is tested on: a family's Estimate (value and 95% interval) of a
measure, read from one data set's committed records (issue 33).

A measure is a metric of every run (over seeds: a t interval; one run: its own interval), the
spread of a metric over seeds, the share of runs that diverged, the training compute a family
needs to reach a stated quality (from the compute-scaling fits), or a property a record states.
Metric keys are results.json's (genbench/core/results.py); a key a record lacks is missing,
never 0, so records of older and newer schemas both read.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from genbench.reporting.aggregate import finite
from genbench.reporting.paired import Z95
from genbench.reporting.scaling_fits import C0, bootstrap_fits, collect_points, fit_power_law
from genbench.reporting.verdicts import Estimate, sd_interval, share_interval, t_interval

# Refits of seed-resampled curves behind a compute-to-reach interval (as the scaling report).
RESAMPLES = 200


@dataclass
class Evidence:
    """One data set's committed records: `runs` by model (every status, baselines and the
    real-data floor included), and `scaling`, the records at several training budgets that the
    compute-scaling fits read (empty where the data set has none), refitted `resamples` times
    for their intervals. `cache` keeps the fits that several claims share."""

    name: str
    runs: dict[str, list[dict]]
    scaling: list[dict] = field(default_factory=list)
    resamples: int = RESAMPLES
    cache: dict = field(default_factory=dict)

    def completed(self, model: str) -> list[dict]:
        return [r for r in self.runs.get(model, []) if r.get("status") == "completed"]


def metric(key: str) -> Callable[[dict], float | None]:
    """A record's metrics[key] where it is a finite number, else None."""
    return lambda record: finite((record.get("metrics") or {}).get(key))


def flops_per_step(record: dict) -> float | None:
    """Training FLOPs of one optimiser step, as the budget's probe measured them."""
    return finite((record.get("budget") or {}).get("flops_per_step"))


def stderr_interval(key: str) -> Callable[[dict], tuple[float, float] | None]:
    """A run's own 95% interval from metrics[key] ± 1.96 · metrics[key + '_stderr']."""

    def own(record: dict):
        m = record.get("metrics") or {}
        v, se = finite(m.get(key)), finite(m.get(f"{key}_stderr"))
        return None if v is None or se is None else (v - Z95 * se, v + Z95 * se)

    return own


def ci_interval(key: str) -> Callable[[dict], tuple[float, float] | None]:
    """A run's own 95% interval recorded as metrics[key + '_ci'] = [low, high]."""

    def own(record: dict):
        ci = (record.get("metrics") or {}).get(f"{key}_ci")
        ok = (
            isinstance(ci, (list, tuple))
            and len(ci) == 2
            and all(finite(c) is not None for c in ci)
        )
        return (float(ci[0]), float(ci[1])) if ok else None

    return own


@dataclass(frozen=True)
class RunMetric:
    """A metric of every completed run. Over two seeds or more: the t interval of the mean;
    one run: its own interval (`own`), none where the metric has no per-run uncertainty; a
    value fixed by the protocol (`protocol`: NFE, FLOPs per step) is its own interval."""

    name: str
    better: str | None  # "higher" or "lower": which way is better; None: neither
    get: Callable[[dict], float | None]
    own: Callable[[dict], tuple[float, float] | None] | None = None
    protocol: bool = False

    def values(self, evidence: Evidence, model: str) -> list[tuple[float, dict]] | Estimate:
        runs = evidence.completed(model)
        if not runs:
            return Estimate.missing(f"no completed {model} run")
        found = [(v, r) for r in runs if (v := self.get(r)) is not None]
        return found or Estimate.missing(f"{model}'s records have no {self.name}")

    def estimate(self, evidence: Evidence, model: str) -> Estimate:
        found = self.values(evidence, model)
        if isinstance(found, Estimate):
            return found
        vals = [v for v, _ in found]
        if self.protocol and len(set(vals)) == 1:
            return Estimate(vals[0], vals[0], vals[0], "fixed by the protocol")
        if len(vals) >= 2:
            return t_interval(vals)
        own = self.own(found[0][1]) if self.own else None
        if own is None:
            return Estimate(vals[0], None, None, "one run, no interval of its own")
        return Estimate(vals[0], *own, "one run, its own 95% interval")


@dataclass(frozen=True)
class Spread:
    """The standard deviation of a metric over seeds, with its chi-square interval."""

    of: RunMetric
    better: str = "lower"

    @property
    def name(self) -> str:
        return f"sd over seeds of {self.of.name}"

    def estimate(self, evidence: Evidence, model: str) -> Estimate:
        found = self.of.values(evidence, model)
        if isinstance(found, Estimate):
            return found
        if len(found) < 2:
            return Estimate.missing("one seed: no spread over seeds")
        return sd_interval([v for v, _ in found])


@dataclass(frozen=True)
class DivergedShare:
    """The share of a family's runs that stopped as diverged (status 'diverged'), with its
    Clopper-Pearson interval."""

    name: str = "share of runs diverged"
    better: str = "lower"

    def estimate(self, evidence: Evidence, model: str) -> Estimate:
        runs = evidence.runs.get(model, [])
        if not runs:
            return Estimate.missing(f"no {model} run")
        return share_interval(sum(r.get("status") == "diverged" for r in runs), len(runs))


def compute_to_reach(fit, target: float, lo: float, hi: float) -> float:
    """FLOPs at which a fitted curve L(C) = L_inf + a (C / C0)^-alpha reaches `target`:
    inf where it never does or only beyond the largest budget measured `hi`; `lo` where it
    is there already at the smallest (the budgets say no more)."""
    if target <= fit.l_inf:
        return math.inf
    c = C0 * (fit.a / (target - fit.l_inf)) ** (1 / fit.alpha)
    return math.inf if c > hi else max(c, lo)


@dataclass(frozen=True)
class ComputeToReach:
    """Training FLOPs a family needs to reach `target` of a metric (lower is better), read off
    its compute-scaling fit; the interval spans the central 95% of refits to seed-resampled
    points (genbench/reporting/scaling_fits.py). Only within the budgets measured."""

    key: str
    target: float
    better: str = "lower"

    @property
    def name(self) -> str:
        return f"training FLOPs to reach {self.key} {self.target:g}"

    def estimate(self, evidence: Evidence, model: str) -> Estimate:
        slot = ("compute_to_reach", self.key, self.target, model)
        if slot not in evidence.cache:
            evidence.cache[slot] = self._estimate(evidence, model)
        return evidence.cache[slot]

    def _estimate(self, evidence: Evidence, model: str) -> Estimate:
        if not evidence.scaling:
            return Estimate.missing("no runs at several training budgets on this data set")
        points = collect_points(evidence.scaling, self.key).get(model)
        if not points or len(points) < 3:
            return Estimate.missing(f"{model} has runs at fewer than 3 budgets")
        lo, hi = min(points), max(points)
        fit = fit_power_law(
            [c for c, vs in points.items() for _ in vs], [v for vs in points.values() for v in vs]
        )
        if fit is None:
            return Estimate.missing(f"{model}'s {self.key} curve did not fit")
        reach = [
            compute_to_reach(f, self.target, lo, hi)
            for f in bootstrap_fits(points, evidence.resamples)
        ]
        value = compute_to_reach(fit, self.target, lo, hi)
        if not reach:
            return Estimate(value, None, None, "no seed-resampled refit converged")
        low = float(np.quantile(reach, 0.025, method="lower"))
        high = float(np.quantile(reach, 0.975, method="higher"))
        basis = f"fit over {lo:.2g} to {hi:.2g} FLOPs, {len(reach)} seed-resampled refits"
        return Estimate(value, low, high, basis)


@dataclass(frozen=True)
class RecordedValue:
    """A property a record states (e.g. metrics.nll_kind), not a number."""

    name: str
    get: Callable[[dict], str | None]

    def read(self, evidence: Evidence, model: str) -> list[str] | Estimate:
        runs = evidence.completed(model)
        if not runs:
            return Estimate.missing(f"no completed {model} run")
        found = [v for v in map(self.get, runs) if v is not None]
        return found or Estimate.missing(f"{model}'s records have no {self.name}")


def reference(value: float, what: str) -> Estimate:
    """A fixed value to compare with (e.g. C_T = 0, what held-out images score)."""
    return Estimate(value, value, value, what)


def spectrum_gap(record: dict) -> float | None:
    """|log hf_power_ratio|: how far the samples' high-frequency share is from the test
    images', in either direction (0: the data's balance; blur and noise both move it up)."""
    r = metric("hf_power_ratio")(record)
    return None if r is None or r <= 0 else abs(math.log(r))


def spectrum_gap_interval(record: dict) -> tuple[float, float] | None:
    """spectrum_gap's interval from hf_power_ratio's: |log| of its ends, 0 where it holds 1."""
    ci = ci_interval("hf_power_ratio")(record)
    if ci is None or ci[0] <= 0:
        return None
    lo, hi = math.log(ci[0]), math.log(ci[1])
    ends = sorted((abs(lo), abs(hi)))
    return (0.0 if lo <= 0 <= hi else ends[0], ends[1])


FID = RunMetric("FID", "lower", metric("fid"), own=ci_interval("fid"))
HF_POWER_RATIO = RunMetric(
    "high-frequency power share, samples / test",
    None,
    metric("hf_power_ratio"),
    own=ci_interval("hf_power_ratio"),
)
SPECTRUM_GAP = RunMetric(
    "|log high-frequency power ratio|", "lower", spectrum_gap, own=spectrum_gap_interval
)
LATENT_PATH_LENGTH = RunMetric(
    "perceptual path length (classifier features)",
    "lower",
    metric("latent_path_length"),
    own=ci_interval("latent_path_length"),
)
INTERPOLANT_CONFIDENCE = RunMetric(
    "share of interpolants labelled with p >= 0.9", "higher", metric("interpolant_confidence")
)
CHAIN_DISTANCE = RunMetric(
    "chain distance over a half chain / distance between test images",
    None,
    metric("chain_distance"),
)
SAMPLING_FLOPS = RunMetric("FLOPs per sample", "lower", metric("sampling_flops"), protocol=True)
PRECISION = RunMetric("precision", "higher", metric("precision"))
RECALL = RunMetric("recall", "higher", metric("recall"))
COVERAGE = RunMetric("coverage", "higher", metric("coverage"))
CLASS_KL = RunMetric("KL(sample classes || test classes)", "lower", metric("class_kl"))
BITS_PER_DIM = RunMetric("bits/dim", "lower", metric("nll_bpd"), own=stderr_interval("nll_bpd"))
SAMPLES_PER_S = RunMetric("samples/s", "higher", metric("samples_per_s"))
NFE = RunMetric("network evaluations per sample", "lower", metric("nfe"), protocol=True)
FLOPS_PER_STEP = RunMetric("training FLOPs per step", None, flops_per_step, protocol=True)
CT_SCORE = RunMetric("C_T", None, metric("ct_score"))
NLL_KIND = RecordedValue("nll_kind", lambda r: (r.get("metrics") or {}).get("nll_kind"))
