"""Quality against training compute, the fits: curves L(C) = L_inf + a C^-alpha through the
per-seed points of every family's runs at several FLOP budgets, bootstrap intervals over seeds,
and where two families' curves cross. The report's text is `scaling_writers.py`, its plots
`scaling_plots.py`.

Fits follow Henighan et al. 2020 (image loss as a power law plus a constant in compute), in
C' = C / 1e12 FLOPs: least squares on the per-seed points with L_inf in [0, min(L)), a > 0 and
alpha in (0, ALPHA_MAX]. Intervals come from resampling the seeds at each budget (with
replacement) and refitting; a parameter whose resampled fits reach a bound of its range is
reported as not pinned down by these budgets (its interval is open on that side).
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass

import numpy as np

from genbench.core.results import FLOOR_FAMILY, budget_flops

ALPHA_MIN, ALPHA_MAX = 1e-3, 3.0
A_MIN = 1e-12
C0 = 1e12  # compute unit of the fits (FLOPs)


@dataclass
class Fit:
    l_inf: float
    a: float
    alpha: float

    def __call__(self, flops) -> np.ndarray:
        return self.l_inf + self.a * (np.asarray(flops, dtype=float) / C0) ** (-self.alpha)


def fit_power_law(flops, values) -> Fit | None:
    """Least-squares L(C) = L_inf + a (C / 1e12)^-alpha through points (C, L); None with fewer
    than 3 distinct budgets, or with a value below 0 (L_inf in [0, min(L)] has no room).

    Separable least squares (variable projection, Golub & Pereyra 1973): for a given alpha the
    model is linear in (L_inf, a), so their bounded least-squares values have a closed form and
    the sum of squares becomes a function of alpha alone, minimised over (0, ALPHA_MAX] on a
    grid and then by bounded Brent. No start values, none of a local solver's flat valleys."""
    from scipy.optimize import minimize_scalar

    x, y = np.asarray(flops, dtype=float) / C0, np.asarray(values, dtype=float)
    if len(np.unique(x)) < 3 or y.min() < 0:
        return None
    grid = np.linspace(ALPHA_MIN, ALPHA_MAX, 301)
    sse = _linear_part(x, y, grid)[2]
    i = int(np.argmin(sse))
    lo, hi = grid[max(i - 1, 0)], grid[min(i + 1, len(grid) - 1)]
    best = minimize_scalar(
        lambda al: float(_linear_part(x, y, np.array([al]))[2][0]),
        bounds=(lo, hi),
        method="bounded",
        options={"xatol": 1e-10},
    )
    alpha = float(best.x) if best.fun <= sse[i] else float(grid[i])
    l_inf, a, _ = _linear_part(x, y, np.array([alpha]))
    return Fit(float(l_inf[0]), float(a[0]), alpha)


def _linear_part(x: np.ndarray, y: np.ndarray, alphas: np.ndarray):
    """For each alpha: the least-squares (L_inf, a) with 0 <= L_inf <= min(y) and a >= A_MIN
    for y ~ L_inf + a x^-alpha, and its sum of squares. A convex problem in two variables: its
    minimum is the unconstrained one when that is feasible, else the best of the minima along
    the four edges of the feasible box (each a clipped one-variable least squares)."""
    z = x[None, :] ** -alphas[:, None]  # (alphas, points)
    l_max = float(y.min())
    zm, ym = z.mean(1), y.mean()
    szz = ((z - zm[:, None]) ** 2).sum(1)
    szy = ((z - zm[:, None]) * (y - ym)[None, :]).sum(1)
    a_free = np.where(szz > 0, szy / np.where(szz > 0, szz, 1.0), A_MIN)
    cands = [(ym - a_free * zm, a_free)]  # unconstrained
    for l_edge in (0.0, l_max):  # L_inf at a bound: a by one-variable least squares
        a_edge = np.maximum((z * (y - l_edge)[None, :]).sum(1) / (z * z).sum(1), A_MIN)
        cands.append((np.full_like(a_edge, l_edge), a_edge))
    a_min = np.full_like(zm, A_MIN)  # a at its bound: L_inf by a clipped mean
    cands.append((np.clip(ym - A_MIN * zm, 0.0, l_max), a_min))
    best_l, best_a, best_sse = np.zeros_like(zm), np.zeros_like(zm), np.full_like(zm, np.inf)
    for l_inf, a in cands:
        feasible = (l_inf >= 0.0) & (l_inf <= l_max) & (a >= A_MIN)
        sse = ((l_inf[:, None] + a[:, None] * z - y[None, :]) ** 2).sum(1)
        take = feasible & (sse < best_sse)
        best_l = np.where(take, l_inf, best_l)
        best_a = np.where(take, a, best_a)
        best_sse = np.where(take, sse, best_sse)
    return best_l, best_a, best_sse


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
            "alpha": interval([b.alpha for b in boots], (ALPHA_MIN, ALPHA_MAX)),
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
