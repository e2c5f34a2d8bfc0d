"""The claims report (issue 33): the verdict rule on constructed seed values against intervals
computed independently, the intervals' coverage, the claims list, and the report built from
the committed digits runs. No training: every record here is hand-made or committed."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from genbench.core.results import METRIC_KEYS
from genbench.reporting import measures as m
from genbench.reporting.claims import CLAIMS, LESSON_FAMILIES, Claim, assess, ordering, untested
from genbench.reporting.claims_report import Source, report
from genbench.reporting.scaling_fits import Fit, bootstrap_fits, collect_points
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

ROOT = Path(__file__).resolve().parents[2]
DIGITS = ROOT / "docs" / "benchmark" / "digits" / "runs"


def run(model: str, seed: int, status: str = "completed", **metrics) -> dict:
    return {"family": model, "model": model, "seed": seed, "status": status, "metrics": metrics}


def evidence(runs: list[dict], scaling=(), resamples: int = 20) -> m.Evidence:
    by: dict[str, list[dict]] = {}
    for r in runs:
        by.setdefault(r["model"], []).append(r)
    return m.Evidence("hand-made", by, list(scaling), resamples)


def seeds(model: str, key: str, values, **extra) -> list[dict]:
    return [run(model, i, **{key: v}, **extra) for i, v in enumerate(values)]


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


def test_one_seed_uses_the_runs_own_interval_or_none():
    """bits/dim: ± z_0.975 standard errors; FID: its bootstrap interval as recorded; a metric
    with no per-run uncertainty has no interval, so nothing separates."""
    z = stats.norm.ppf(0.975)
    ev = evidence(
        [
            run(
                "a", 0, nll_bpd=1.50, nll_bpd_stderr=0.01, fid=20.0, fid_ci=[18.0, 23.0], recall=0.9
            ),
            run(
                "b", 0, nll_bpd=1.60, nll_bpd_stderr=0.01, fid=30.0, fid_ci=[28.0, 31.0], recall=0.1
            ),
            run("c", 0, nll_bpd=1.52, nll_bpd_stderr=0.01),
        ]
    )
    est = m.BITS_PER_DIM.estimate(ev, "a")
    assert (est.low, est.high) == pytest.approx((1.50 - z * 0.01, 1.50 + z * 0.01), rel=1e-12)
    assert (m.FID.estimate(ev, "a").low, m.FID.estimate(ev, "a").high) == (18.0, 23.0)
    claim = ordering("x", "a", "a is better", m.BITS_PER_DIM, "lower", ["b"], "n", "s")
    assert assess(claim, ev).verdict == SUPPORTED
    claim = ordering("x", "a", "a is better", m.BITS_PER_DIM, "lower", ["c"], "n", "s")
    assert assess(claim, ev).verdict == NOT_SEPARABLE  # 1.50 ± 0.0196 against 1.52 ± 0.0196
    claim = ordering("x", "a", "a recalls more", m.RECALL, "higher", ["b"], "n", "s")
    assert not m.RECALL.estimate(ev, "a").has_interval
    assert assess(claim, ev).verdict == NOT_SEPARABLE


def test_protocol_values_are_their_own_interval_and_missing_values_are_not_measured():
    ev = evidence(
        [*seeds("arm", "nfe", [64, 64, 64]), *seeds("gan", "nfe", [1, 1, 1]),
         *seeds("vae", "nfe", [None, None, None]), run("flow", 0, "failed", nfe=12)]
    )  # fmt: skip
    assert m.NFE.estimate(ev, "arm") == Estimate(64, 64, 64, "fixed by the protocol")
    assert assess(ordering("x", "arm", "t", m.NFE, "higher", ["gan"], "n", "s"), ev).verdict == (
        SUPPORTED
    )
    for other, why in (("vae", "records have no"), ("flow", "no completed flow run")):
        a = assess(ordering("x", "arm", "t", m.NFE, "higher", ["gan", other], "n", "s"), ev)
        assert a.verdict == NOT_MEASURED and why in " ".join(a.why)


def test_spread_and_divergence_claims():
    ev = evidence(
        [*seeds("vae", "fid", [100.0, 100.1, 99.9]), *seeds("gan", "fid", [50.0, 150.0, 100.0]),
         run("ebm", 0, fid=10.0), run("ebm", 1, "diverged"), run("ebm", 2, "diverged")]
    )  # fmt: skip
    stable = ordering("x", "vae", "t", m.Spread(m.FID), "lower", ["gan"], "n", "s")
    assert assess(stable, ev).verdict == SUPPORTED  # sd 0.1 [0.05, 0.63] vs 50 [26, 314]
    one_seed = ordering("x", "vae", "t", m.Spread(m.FID), "lower", ["ebm"], "n", "s")
    assert assess(one_seed, ev).verdict == NOT_MEASURED
    diverged = m.DivergedShare().estimate(ev, "ebm")
    assert diverged.value == pytest.approx(2 / 3)
    claim = ordering("x", "vae", "t", m.DivergedShare(), "lower", ["ebm"], "n", "s")
    assert assess(claim, ev).verdict == NOT_SEPARABLE  # 0 of 3 against 2 of 3: [0, .71] [.09, 1]


def test_a_property_is_read_from_the_records():
    claim = next(c for c in CLAIMS if c.id == "flow-exact-likelihood")
    exact = evidence(seeds("flow", "nll_kind", ["exact"] * 3))
    bound = evidence(seeds("flow", "nll_kind", ["bound"] * 3))
    mixed = evidence(seeds("flow", "nll_kind", ["exact", "bound"]))
    assert assess(claim, exact).verdict == SUPPORTED
    assert assess(claim, bound).verdict == CONTRADICTED
    assert assess(claim, mixed).verdict == NOT_SEPARABLE
    assert assess(claim, evidence([run("gan", 0)])).verdict == NOT_MEASURED


# --- training compute to reach a quality ---------------------------------------------------


def test_compute_to_reach_solves_the_fitted_law():
    fit = Fit(l_inf=50.0, a=100.0, alpha=0.5)  # 150 at 1e12 FLOPs, 100 at 4e12
    assert m.compute_to_reach(fit, 100.0, 1e11, 1e13) == pytest.approx(4e12)
    assert m.compute_to_reach(fit, 150.0, 1e11, 1e13) == pytest.approx(1e12)
    assert m.compute_to_reach(fit, 40.0, 1e11, 1e13) == math.inf  # below L_inf: never
    assert m.compute_to_reach(fit, 60.0, 1e11, 1e13) == math.inf  # beyond the budgets
    assert m.compute_to_reach(fit, 1000.0, 1e11, 1e13) == 1e11  # there at the smallest


def test_compute_to_reach_recovers_a_known_law_from_seed_points():
    """3 seeds at 5 budgets of FID = 50 + 100 (C / 1e12)^-0.5 plus noise: the interval holds
    the true 4e12 FLOPs to reach FID 100, and a family twice as fast is separated from it."""
    rng = np.random.default_rng(0)

    def points(model, scale):
        return [
            {"family": model, "model": model, "status": "completed", "seed": s,
             "config": {"budget": {"flops": c}},
             "metrics": {"fid": 50 + 100 * (scale * c / 1e12) ** -0.5 + rng.normal(0, 1)}}
            for c in (3e11, 1e12, 3e12, 1e13, 3e13) for s in range(3)
        ]  # fmt: skip

    ev = evidence([], scaling=points("slow", 1.0) + points("fast", 2.0))
    reach = m.ComputeToReach("fid", 100.0)
    slow = reach.estimate(ev, "slow")
    assert slow.low <= 4e12 <= slow.high and slow.value == pytest.approx(4e12, rel=0.1)
    claim = ordering("x", "slow", "t", reach, "higher", ["fast"], "n", "s")
    assert assess(claim, ev).verdict == SUPPORTED
    # the interval: the 2.5% and 97.5% order statistics of the refits' closed-form solutions
    refits = bootstrap_fits(collect_points(ev.scaling, "fid")["slow"], ev.resamples)
    solved = sorted(1e12 * (f.a / (100.0 - f.l_inf)) ** (1 / f.alpha) for f in refits)
    n = len(solved)
    assert slow.low == pytest.approx(solved[math.floor(0.025 * (n - 1))], rel=1e-9)
    assert slow.high == pytest.approx(solved[math.ceil(0.975 * (n - 1))], rel=1e-9)
    assert reach.estimate(evidence([]), "slow").value is None


# --- the claims ----------------------------------------------------------------------------


def test_at_least_fifteen_claims_covering_every_family_of_the_lesson():
    assert len(CLAIMS) >= 15
    assert len({c.id for c in CLAIMS}) == len(CLAIMS)
    assert set(LESSON_FAMILIES) == {"gan", "vae", "arm", "diffusion", "ebm", "flow"}
    for family in LESSON_FAMILIES:
        tested = [c for c in CLAIMS if c.lesson == family and c.kind != "untested"]
        assert len(tested) >= 2, family
    for c in CLAIMS:
        assert c.text and c.needs and c.scale, c.id
        if c.kind == "ordering":
            assert c.expects in ("higher", "lower") and (c.against or c.references), c.id


def test_every_untested_claim_says_what_is_missing():
    untested_claims = [c for c in CLAIMS if c.kind == "untested"]
    assert {"arm-long-range", "diffusion-high-resolution"} <= {c.id for c in untested_claims}
    for c in untested_claims:
        assert len(c.missing) > 40, c.id
        a = assess(c, evidence([]))
        assert a.verdict == NOT_MEASURED and a.why == (c.missing,)


def test_flow_matching_stands_beside_every_tested_diffusion_claim():
    twins = {(c.measure, c.expects, c.against) for c in CLAIMS if c.family == "flow_matching"}
    for c in CLAIMS:
        if c.family == "diffusion" and c.kind != "untested":
            assert (c.measure, c.expects, c.against) in twins, c.id


def test_every_measure_reads_a_registered_results_key():
    """A record with every METRIC_KEYS key (and the budget's flops_per_step) gives every run
    metric a value: a misspelt key would read None."""
    record = {"metrics": {k: 1.0 for k in METRIC_KEYS}, "budget": {"flops_per_step": 1.0}}
    for c in CLAIMS:
        measure = c.measure.of if isinstance(c.measure, m.Spread) else c.measure
        if isinstance(measure, m.RunMetric) and measure is not m.SPECTRUM_GAP:
            assert measure.get(record) == 1.0, c.id
        if isinstance(measure, (m.ComputeToReach, m.RecordedValue)):
            assert getattr(measure, "key", measure.name) in METRIC_KEYS, c.id


def test_the_spectrum_gap_is_the_distance_of_the_log_ratio_from_zero_and_its_interval():
    """|log r| for a ratio r and its interval: an interval holding 1 starts at 0; one below 1
    maps to |log| of its ends, reversed; a record without the ratio has no gap."""
    rec = lambda r, ci: {"metrics": {"hf_power_ratio": r, "hf_power_ratio_ci": ci}}  # noqa: E731
    assert m.spectrum_gap(rec(0.5, None)) == pytest.approx(math.log(2))
    assert m.spectrum_gap(rec(2.0, None)) == pytest.approx(math.log(2))
    assert m.spectrum_gap({"metrics": {}}) is None
    lo, hi = m.spectrum_gap_interval(rec(1.1, [0.8, 1.5]))
    assert lo == 0.0 and hi == pytest.approx(math.log(1.5))
    lo, hi = m.spectrum_gap_interval(rec(0.5, [0.25, 0.8]))
    assert lo == pytest.approx(-math.log(0.8)) and hi == pytest.approx(math.log(4))
    assert m.SPECTRUM_GAP.get(rec(1.0, None)) == 0.0


def test_an_untested_claim_helper_and_kinds():
    c = untested("x", "vae", "t", "a spectrum", "s")
    assert isinstance(c, Claim) and c.kind == "untested" and c.lesson == "vae"


# --- the report from the committed digits runs ---------------------------------------------


@pytest.mark.skipif(not DIGITS.is_dir(), reason="docs/benchmark/digits/runs is not committed")
def test_the_report_on_the_committed_digits_runs_has_one_row_per_claim():
    source = Source("digits", "docs/benchmark/digits/runs", ("docs/benchmark/scaling/runs",))
    text, assessments = report(sources=(source,), root=ROOT, resamples=10)
    assert [a.claim.id for a in assessments] == [c.id for c in CLAIMS]
    ids = [c.id for c in CLAIMS]
    glance = text.split("## At a glance")[1].split("## Verdicts on digits")[0]
    verdicts = text.split("## Verdicts on digits")[1].split("## Notes by claim")[0]
    for section in (glance, verdicts):
        rows = [line for line in section.splitlines() if line.startswith("| `")]
        assert [row.split("`")[1] for row in rows] == ids
    assert text.count("is judged by comparing 95% intervals") == 1  # the rule, once
    # the GAN's FID on digits, by hand from the three committed records
    fids = [
        json.loads((DIGITS / f"gan_digits_seed{s}" / "results.json").read_text())["metrics"]["fid"]
        for s in range(3)
    ]
    gan = next(a for a in assessments if a.claim.id == "gan-fidelity").values["gan"]
    assert (gan.value, gan.low, gan.high) == pytest.approx(by_hand(fids), rel=1e-9)
    nfe = next(a for a in assessments if a.claim.id == "arm-sequential")
    assert nfe.verdict == SUPPORTED and nfe.values["arm"].value == 64
    # by family: each lesson family's verdicts on digits, counted from the glance rows
    table = text.split("## By family")[1].split("## At a glance")[0]
    for family in LESSON_FAMILIES:
        row = next(line for line in table.splitlines() if line.startswith(f"| {family} |"))
        mine = [a.verdict for a in assessments if a.claim.lesson == family]
        want = ", ".join(
            f"{mine.count(v)} {v.replace(' at this scale', '')}"
            for v in (SUPPORTED, CONTRADICTED, NOT_SEPARABLE, NOT_MEASURED)
            if mine.count(v)
        )
        assert row == f"| {family} | {len(mine)} | {want} |"


def test_the_readme_shows_the_committed_reports_table_by_family():
    """The README's verdict table is docs/claims.md's (make claims writes both from one
    function; this keeps the README from going stale when the report is regenerated)."""
    report_text = (ROOT / "docs" / "claims.md").read_text()
    table = report_text.split("## By family\n\n")[1].split("\n\n")[0]
    assert table.startswith("| family | claims |") and table in (ROOT / "README.md").read_text()
