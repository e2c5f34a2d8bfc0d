"""Quality against training compute: runs of every family at several FLOP budgets, fitted
curves L(C) = L_inf + a C^-alpha with bootstrap intervals over seeds, where families cross,
and the plots.

Fits follow Henighan et al. 2020 (image loss as a power law plus a constant in compute), in
C' = C / 1e12 FLOPs: least squares on the per-seed points with L_inf in [0, min(L)), a > 0 and
alpha in (0, ALPHA_MAX]. Intervals come from resampling the seeds at each budget (with
replacement) and refitting; a parameter whose resampled fits reach a bound of its range is
reported as not pinned down by these budgets (its interval is open on that side).
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from dataclasses import dataclass

import numpy as np

from genbench.core.results import FLOOR_FAMILY, budget_flops

ALPHA_MAX = 3.0
C0 = 1e12  # compute unit of the fits (FLOPs)


@dataclass
class Fit:
    l_inf: float
    a: float
    alpha: float

    def __call__(self, flops) -> np.ndarray:
        return self.l_inf + self.a * (np.asarray(flops, dtype=float) / C0) ** (-self.alpha)


def fit_power_law(flops, values) -> Fit | None:
    """Least-squares L(C) = L_inf + a (C / 1e12)^-alpha through points (C, L); None when it
    does not converge (or fewer than 3 distinct budgets)."""
    from scipy.optimize import curve_fit

    x, y = np.asarray(flops, dtype=float) / C0, np.asarray(values, dtype=float)
    if len(np.unique(x)) < 3:
        return None
    lo = float(y.min())

    def f(c, l_inf, a, alpha):
        return l_inf + a * c ** (-alpha)

    best = None
    for alpha0 in (0.1, 0.3, 1.0):  # a few starts: the objective has flat valleys
        l0 = max(0.0, lo - 0.5 * (y.max() - lo) - 1e-6)
        a0 = max((y.max() - l0) * x.min() ** alpha0, 1e-6)
        try:
            p, _ = curve_fit(
                f,
                x,
                y,
                p0=(l0, a0, alpha0),
                bounds=([0.0, 1e-12, 1e-3], [lo, np.inf, ALPHA_MAX]),
                maxfev=20000,
            )
        except (RuntimeError, ValueError):
            continue
        sse = float(((f(x, *p) - y) ** 2).sum())
        if best is None or sse < best[0]:
            best = (sse, Fit(*map(float, p)))
    return None if best is None else best[1]


def bootstrap_fits(
    points: dict[float, list[float]], resamples: int = 200, seed: int = 0
) -> list[Fit]:
    """Fits to `resamples` resamplings of the seeds at each budget (points: budget -> values)."""
    rng = np.random.default_rng(seed)
    fits = []
    budgets = sorted(points)
    for _ in range(resamples):
        xs, ys = [], []
        for c in budgets:
            vals = np.asarray(points[c], dtype=float)
            pick = vals[rng.integers(0, len(vals), len(vals))]
            xs += [c] * len(pick)
            ys += list(pick)
        fit = fit_power_law(xs, ys)
        if fit is not None:
            fits.append(fit)
    return fits


def interval(values: list[float], bounds: tuple[float, float], level: float = 0.9) -> dict:
    """The central `level` interval of bootstrap values, and whether each end is pinned down
    (not at a bound of the fit's range: within 1% of it counts as at it)."""
    if not values:
        return {"low": None, "high": None, "pinned": [False, False]}
    lo, hi = np.quantile(values, [(1 - level) / 2, (1 + level) / 2])
    span = bounds[1] - bounds[0] if math.isfinite(bounds[1] - bounds[0]) else abs(hi) + 1.0
    near = lambda v, b: math.isfinite(b) and abs(v - b) <= 0.01 * span  # noqa: E731
    return {
        "low": float(lo),
        "high": float(hi),
        "pinned": [not near(lo, bounds[0]), not near(hi, bounds[1])],
    }


def collect_points(records: list[dict], metric: str) -> dict[str, dict[float, list[float]]]:
    """family (or model) -> training budget (FLOPs) -> per-seed values of `metric` (completed
    runs with a FLOP budget)."""
    out: dict[str, dict[float, list[float]]] = defaultdict(lambda: defaultdict(list))
    for r in records:
        if r.get("status") != "completed" or r.get("family") == FLOOR_FAMILY:
            continue
        budget = budget_flops(r)
        v = (r.get("metrics") or {}).get(metric)
        if budget is None or not isinstance(v, (int, float)) or not math.isfinite(v):
            continue
        out[r["model"]][float(budget)].append(float(v))
    return {k: dict(v) for k, v in out.items()}


def summarise(
    points: dict[str, dict[float, list[float]]], resamples: int = 200, unranked=frozenset()
) -> dict:
    """Per family: the fit, bootstrap intervals of L_inf and alpha, and per budget the mean,
    std and seeds; plus, per budget, which family is best. Families in `unranked` (an AIS
    estimate, no direction claimed, beside bounds) are fitted but never named best."""
    families = {}
    for fam, by_budget in points.items():
        xs = [c for c, vals in by_budget.items() for _ in vals]
        ys = [v for vals in by_budget.values() for v in vals]
        fit = fit_power_law(xs, ys)
        boots = bootstrap_fits(by_budget, resamples) if fit is not None else []
        lo = min(ys)
        families[fam] = {
            "fit": None if fit is None else fit.__dict__,
            "l_inf": interval([b.l_inf for b in boots], (0.0, lo)),
            "alpha": interval([b.alpha for b in boots], (1e-3, ALPHA_MAX)),
            "fits_converged": f"{len(boots)}/{resamples}",
            "budgets": {
                c: {
                    "mean": float(np.mean(v)),
                    "std": float(np.std(v, ddof=1)) if len(v) > 1 else None,
                    "seeds": len(v),
                }
                for c, v in sorted(by_budget.items())
            },
            "_boots": boots,
        }
    budgets = sorted({c for f in families.values() for c in f["budgets"]})
    best = {}
    for c in budgets:
        scores = {
            f: v["budgets"][c]["mean"]
            for f, v in families.items()
            if c in v["budgets"] and f not in unranked
        }
        best[c] = min(scores, key=scores.get) if scores else None
    return {"families": families, "best": best, "unranked": sorted(unranked)}


def crossing(a: list[Fit], b: list[Fit], lo: float, hi: float) -> dict:
    """Where two families' fitted curves cross inside [lo, hi] FLOPs, over paired bootstrap
    fits: the share of fits that cross once there, and the 90% interval of the crossing."""
    grid = np.logspace(math.log10(lo), math.log10(hi), 400)
    where = []
    for fa, fb in zip(a, b):
        d = fa(grid) - fb(grid)
        sign = np.sign(d)
        change = np.nonzero(sign[1:] != sign[:-1])[0]
        if len(change) == 1:
            where.append(float(grid[change[0] + 1]))
    n = max(1, min(len(a), len(b)))
    if not where:
        return {"share": 0.0, "low": None, "high": None}
    q = np.quantile(where, [0.05, 0.95])
    return {"share": len(where) / n, "low": float(q[0]), "high": float(q[1])}


def _fmt_interval(iv: dict, fmt: str = "{:.3g}") -> str:
    if iv["low"] is None:
        return "—"
    low = fmt.format(iv["low"]) if iv["pinned"][0] else "unbounded"
    high = fmt.format(iv["high"]) if iv["pinned"][1] else "unbounded"
    return f"[{low}, {high}]"


def report_markdown(summary: dict, metric: str, kinds: dict[str, str]) -> str:
    """The scaling table of one metric: per family its per-budget mean ± std (seeds), the fit
    and its intervals, and the budgets at which it is the best."""
    fams = summary["families"]
    budgets = sorted({c for f in fams.values() for c in f["budgets"]})
    head = ["family", *[f"{c:.2g}" for c in budgets], "L_inf [90%]", "alpha [90%]", "best at"]
    lines = [f"| {' | '.join(head)} |", "|" + "---|" * len(head)]
    for fam, f in sorted(fams.items()):
        cells = [fam + (" (estimate)" if kinds.get(fam) == "estimate" else "")]
        for c in budgets:
            b = f["budgets"].get(c)
            if b is None:
                cells.append("—")
                continue
            std = f" ± {b['std']:.3g}" if b["std"] is not None else ""
            cells.append(f"{b['mean']:.4g}{std} ({b['seeds']})")
        fit = f["fit"]
        cells.append(f"{fit['l_inf']:.3g} {_fmt_interval(f['l_inf'])}" if fit else "no fit")
        cells.append(f"{fit['alpha']:.3g} {_fmt_interval(f['alpha'])}" if fit else "no fit")
        at = [f"{c:.2g}" for c, w in summary["best"].items() if w == fam]
        unranked = fam in summary.get("unranked", ())
        cells.append("not ranked" if unranked else ", ".join(at) or "never")
        lines.append(f"| {' | '.join(cells)} |")
    return "\n".join(lines) + "\n"


def crossings_markdown(summary: dict, lo: float, hi: float) -> str:
    """Pairs of families whose fitted curves cross inside the measured range, in how many of the
    bootstrap fits, and where (90% interval of the crossing compute)."""
    unranked = set(summary.get("unranked", ()))
    fams = sorted(f for f, v in summary["families"].items() if v["_boots"] and f not in unranked)
    lines = ["| pair | share of fits crossing | crossing at (FLOPs, 90%) |", "|---|---|---|"]
    for i, a in enumerate(fams):
        for b in fams[i + 1 :]:
            c = crossing(summary["families"][a]["_boots"], summary["families"][b]["_boots"], lo, hi)
            if c["share"] >= 0.05:
                where = f"[{c['low']:.2g}, {c['high']:.2g}]" if c["low"] is not None else "—"
                lines.append(f"| {a} / {b} | {c['share']:.0%} | {where} |")
    if len(lines) == 2:
        lines.append(
            f"| (none: no pair crosses in at least 5% of the fits in [{lo:.2g}, {hi:.2g}]) | | |"
        )
    if unranked:
        lines.append(
            f"\n{', '.join(sorted(unranked))}: an estimate of no proven direction, "
            "not crossed with the others."
        )
    return "\n".join(lines) + "\n"


def checkpoint_fraction(record: dict) -> float | None:
    """Where the evaluated (best-on-validation) checkpoint lies in the run: its step over the
    steps trained; None when the record does not say."""
    name = str(record.get("evaluated_checkpoint") or "")
    m = re.search(r"step(\d+)", name)
    steps = (record.get("metrics") or {}).get("train_steps")
    if not m or not steps:
        return None
    return int(m.group(1)) / float(steps)


def means_markdown(records: list[dict], columns: dict[str, callable], budgets: list[float]) -> str:
    """One row per family and quantity, one column per budget: mean ± std over seeds (n)."""
    head = ["family", "quantity", *[f"{c:.2g}" for c in budgets]]
    lines = [f"| {' | '.join(head)} |", "|" + "---|" * len(head)]
    by: dict[tuple, list[float]] = defaultdict(list)
    for r in records:
        budget = budget_flops(r)
        if r.get("status") != "completed" or r.get("family") == FLOOR_FAMILY or budget is None:
            continue
        for name, get in columns.items():
            v = get(r)
            if isinstance(v, (int, float)) and math.isfinite(v):
                by[(r["model"], name, float(budget))].append(float(v))
    for fam in sorted({k[0] for k in by}):
        for name in columns:
            cells = [fam, name]
            for c in budgets:
                v = by.get((fam, name, c), [])
                std = f" ± {round(float(np.std(v, ddof=1)), 4):.2g}" if len(v) > 1 else ""
                cells.append(f"{np.mean(v):.3g}{std} ({len(v)})" if v else "—")
            lines.append(f"| {' | '.join(cells)} |")
    return "\n".join(lines) + "\n"


MARKERS = {"exact": "o", "bound": "s", "estimate": "^"}


def family_colors(families) -> dict[str, str]:
    """One colour per family, the same in every plot of a report."""
    return {fam: f"C{i % 10}" for i, fam in enumerate(sorted(set(families)))}


def plot_vs_flops(
    summary: dict, metric_title: str, path, kinds: dict[str, str], floor=None, colors=None
):
    """metric against training FLOPs (log x): mean over seeds, a band of ± one std over
    seeds, the fitted curve; the EBM (an estimate of no proven direction) drawn dashed; the
    real-data floor as a line when given."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colors = colors or family_colors(summary["families"])
    fig, ax = plt.subplots(figsize=(6.4, 4.4), dpi=110)
    for fam, f in sorted(summary["families"].items()):
        cs = sorted(f["budgets"])
        mean = [f["budgets"][c]["mean"] for c in cs]
        std = [f["budgets"][c]["std"] or 0.0 for c in cs]
        color = colors[fam]
        lower = kinds.get(fam) == "estimate"
        marker = MARKERS.get(kinds.get(fam), "o")
        label = fam + (" (estimate)" if lower else "")
        ax.plot(cs, mean, marker=marker, ls="none", color=color, label=label)
        ax.fill_between(
            cs, np.subtract(mean, std), np.add(mean, std), color=color, alpha=0.15, lw=0
        )
        if f["fit"]:
            grid = np.logspace(math.log10(min(cs)), math.log10(max(cs)), 100)
            ax.plot(grid, Fit(**f["fit"])(grid), color=color, ls="--" if lower else "-", lw=1)
    if floor is not None:
        ax.axhline(floor, ls=":", color="0.4", lw=1, label="real data (train vs test)")
    ax.set(xscale="log", xlabel="training FLOPs (log scale)", ylabel=metric_title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    ax.set_title(f"{metric_title} vs training compute (band: ± std over seeds; lines: fits)")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def plot_vs_sampling_cost(records: list[dict], budget: float, path, kinds=None, colors=None):
    """bits/dim and FID against samples/s at one budget (the largest), mean ± std over seeds;
    the EBM's bits/dim marked as an estimate."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    by: dict[str, list[dict]] = defaultdict(list)
    for r in records:
        b = budget_flops(r)
        if r.get("status") == "completed" and b == budget and r.get("family") != FLOOR_FAMILY:
            by[r["model"]].append(r["metrics"])
    kinds, colors = kinds or {}, colors or family_colors(by)
    fig, axes = plt.subplots(1, 2, figsize=(10, 4), dpi=110)
    for fam, ms in sorted(by.items()):
        lower = kinds.get(fam) == "estimate"
        speed = np.mean([m["samples_per_s"] for m in ms if m.get("samples_per_s")] or [np.nan])
        for ax, key in zip(axes, ("nll_bpd", "fid")):
            vals = [m[key] for m in ms if isinstance(m.get(key), (int, float))]
            if vals and np.isfinite(speed):
                ax.errorbar(
                    speed,
                    np.mean(vals),
                    yerr=np.std(vals, ddof=1) if len(vals) > 1 else 0.0,
                    fmt=MARKERS.get(kinds.get(fam), "o") if key == "nll_bpd" else "o",
                    color=colors[fam],
                    capsize=3,
                    label=fam + (" (estimate)" if lower and key == "nll_bpd" else ""),
                )
    for ax, title in zip(axes, ("bits/dim", "FID")):
        ax.set(xscale="log", xlabel="samples / s (log scale)", ylabel=title)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle(f"Sampling cost at {budget:.2g} training FLOPs (error bars: std over seeds)")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def write_report(records: list[dict], out_dir, resamples: int = 200) -> dict:
    """scaling.md, scaling.json and the three plots under out_dir, from run records."""
    import json
    from pathlib import Path

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    kinds = {r["model"]: (r.get("metrics") or {}).get("nll_kind") for r in records}
    floor = next(
        ((r.get("metrics") or {}).get("fid") for r in records if r["family"] == FLOOR_FAMILY), None
    )
    unranked = {fam for fam, kind in kinds.items() if kind == "estimate"}
    bpd = summarise(collect_points(records, "nll_bpd"), resamples, unranked)
    fid = summarise(collect_points(records, "fid"), resamples)
    budgets = sorted({c for s in (bpd, fid) for f in s["families"].values() for c in f["budgets"]})
    lo, hi = budgets[0], budgets[-1]
    text = [
        "# Quality against training compute",
        "",
        "Cells: mean ± std over seeds (number of seeds) at each training budget (FLOPs). Fits: "
        "L(C) = L_inf + a (C / 1e12)^-alpha by least squares over the seeds' points; 90% "
        "intervals from refitting resamples of the seeds at each budget; 'unbounded' where "
        "the resampled fits reach a limit of the fit's range (L_inf in [0, the lowest "
        "value], alpha in (0, 3]): these budgets do not pin that end down. A bootstrap over 3 "
        "seeds is narrower than it should be: on synthetic data from a known law (3 seeds, 5 "
        "budgets) these 90% intervals covered the true L_inf and alpha in 17 and 15 of 20 "
        "experiments (tests/reporting/test_scaling.py).",
        "",
        "## bits/dim (likelihood families; the EBM's is an estimate of no proven direction)",
        "",
        report_markdown(bpd, "nll_bpd", kinds),
        crossings_markdown(bpd, lo, hi),
        "## FID (every family)",
        "",
        report_markdown(fid, "fid", {}),
        crossings_markdown(fid, lo, hi),
        "## Where the evaluated checkpoint lies, and memorisation",
        "",
        "The evaluated checkpoint is the best of the run's validations; its step over the steps "
        "trained says whether a family was still improving at the end of its budget (1.00) or "
        "had stopped earlier (on 1000 training images: overfitting). C_T (negative: closer to "
        "the training set than held-out data is) and the fraction of near-copies of training "
        "images measure memorisation.",
        "",
        means_markdown(
            records,
            {
                "best step / steps": checkpoint_fraction,
                "C_T": lambda r: (r.get("metrics") or {}).get("ct_score"),
                "copy fraction": lambda r: (r.get("metrics") or {}).get("nn_copy_fraction"),
            },
            budgets,
        ),
    ]
    (out / "scaling.md").write_text("\n".join(text))
    colors = family_colors(r["model"] for r in records if r["family"] != FLOOR_FAMILY)
    plot_vs_flops(bpd, "bits/dim", out / "bpd_vs_flops.png", kinds, colors=colors)
    plot_vs_flops(fid, "FID", out / "fid_vs_flops.png", {}, floor, colors)
    plot_vs_sampling_cost(records, hi, out / "quality_vs_sampling_cost.png", kinds, colors)

    def clean(s: dict) -> dict:
        return {
            "families": {
                k: {kk: vv for kk, vv in v.items() if kk != "_boots"}
                for k, v in s["families"].items()
            },
            "best": {str(k): v for k, v in s["best"].items()},
            "unranked": s.get("unranked", []),
        }

    (out / "scaling.json").write_text(
        json.dumps({"nll_bpd": clean(bpd), "fid": clean(fid)}, indent=2, default=str) + "\n"
    )
    return {"nll_bpd": bpd, "fid": fid}
