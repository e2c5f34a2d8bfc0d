"""Quality against training compute, the plots: each metric against training FLOPs with the
fitted curves (`scaling_fits.py`), and quality against sampling speed at one budget."""

from __future__ import annotations

import math
from collections import defaultdict

import numpy as np

from genbench.core.results import FLOOR_FAMILY, budget_flops
from genbench.reporting.figures import KIND_MARKERS, log_x_axis, pyplot, save
from genbench.reporting.scaling_fits import Fit


def family_colors(families) -> dict[str, str]:
    """One colour per family, the same in every plot of a report."""
    return {fam: f"C{i % 10}" for i, fam in enumerate(sorted(set(families)))}


def plot_vs_flops(
    summary: dict, metric_title: str, path, kinds: dict[str, str], floor=None, colors=None
):
    """metric against training FLOPs (log x): mean over seeds, a band of ± one std over
    seeds, the fitted curve; the EBM (an estimate of no proven direction) drawn dashed; the
    real-data floor as a line when given."""
    colors = colors or family_colors(summary["families"])
    fig, ax = pyplot().subplots(figsize=(6.4, 4.4), dpi=110)
    for fam, f in sorted(summary["families"].items()):
        cs = sorted(f["budgets"])
        mean = [f["budgets"][c]["mean"] for c in cs]
        std = [f["budgets"][c]["std"] or 0.0 for c in cs]
        color = colors[fam]
        lower = kinds.get(fam) == "estimate"
        marker = KIND_MARKERS.get(kinds.get(fam), "o")
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
    log_x_axis(ax, "training FLOPs (log scale)", metric_title)
    ax.legend(fontsize=7)
    ax.set_title(f"{metric_title} vs training compute (band: ± std over seeds; lines: fits)")
    return save(fig, path)


def plot_vs_sampling_cost(records: list[dict], budget: float, path, kinds=None, colors=None):
    """bits/dim and FID against samples/s at one budget (the largest), mean ± std over seeds;
    the EBM's bits/dim marked as an estimate."""
    by: dict[str, list[dict]] = defaultdict(list)
    for r in records:
        b = budget_flops(r)
        if r.get("status") == "completed" and b == budget and r.get("family") != FLOOR_FAMILY:
            by[r["model"]].append(r["metrics"])
    kinds, colors = kinds or {}, colors or family_colors(by)
    fig, axes = pyplot().subplots(1, 2, figsize=(10, 4), dpi=110)
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
                    fmt=KIND_MARKERS.get(kinds.get(fam), "o") if key == "nll_bpd" else "o",
                    color=colors[fam],
                    capsize=3,
                    label=fam + (" (estimate)" if lower and key == "nll_bpd" else ""),
                )
    for ax, title in zip(axes, ("bits/dim", "FID")):
        log_x_axis(ax, "samples / s (log scale)", title)
        ax.legend(fontsize=7)
    title = f"Sampling cost at {budget:.2g} training FLOPs (error bars: std over seeds)"
    return save(fig, path, title)
