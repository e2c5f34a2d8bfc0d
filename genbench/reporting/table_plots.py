"""The comparison table's figures: quality against sampling speed, quality against sampling
compute (the samplers' curves), and a montage of every row's samples."""

from __future__ import annotations

import math
from pathlib import Path

from genbench.core.results import FLOOR_FAMILY
from genbench.reporting.aggregate import curve_points, floor_mean
from genbench.reporting.figures import KIND_MARKERS, log_x_axis, pyplot, save


def plot_quality_vs_speed(rows: list[dict], path: Path) -> Path | None:
    """FID and bits/dim against samples/s (log x): error bars = std over seeds, marker = the
    NLL's kind, the real-data FID floor as a dashed line; a legend instead of point labels."""
    plt = pyplot()
    models = [r for r in rows if r["family"] != FLOOR_FAMILY]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), dpi=110)
    plotted = 0
    for i, r in enumerate(models):
        x = r["samples_per_s_mean"]
        if x is None:
            continue
        color, label = f"C{i % 10}", f"{r['model']} ({r['dataset']})"
        if r["fid_mean"] is not None:
            axes[0].errorbar(
                x,
                r["fid_mean"],
                yerr=r["fid_std"] or 0,
                xerr=r["samples_per_s_std"] or 0,
                fmt="o",
                color=color,
                capsize=3,
                label=label,
            )
            plotted += 1
        if r["nll_bpd_mean"] is not None:
            kind = (r["nll_kind"] or "exact").split(" ")[0]
            axes[1].errorbar(
                x,
                r["nll_bpd_mean"],
                yerr=r["nll_bpd_std"] or 0,
                fmt=KIND_MARKERS.get(kind, "o"),
                color=color,
                capsize=3,
                label=f"{label}: {kind}",
            )
            plotted += 1
    floor = floor_mean(rows, "fid")
    if floor is not None:
        axes[0].axhline(floor, ls="--", color="0.4", lw=1, label="real data (train vs test)")
    for ax, title in zip(axes, ("FID (lower is better)", "bits/dim (lower is better)")):
        log_x_axis(ax, "samples / s (log scale)", title)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7, loc="best")
    save(fig, path, "Quality vs sampling speed (error bars: std over seeds)")
    return path if plotted else None


def plot_quality_vs_nfe(rows: list[dict], path: Path) -> Path | None:
    """FID against NFE and against samples/s for every row with a curve (metrics.curve)."""
    curves = [(r, curve_points(r)) for r in rows if r["family"] != FLOOR_FAMILY]
    curves = [(r, c) for r, c in curves if c]
    if not curves:
        return None
    fig, axes = pyplot().subplots(1, 2, figsize=(11, 4.2), dpi=110)
    styles = ["-", "--", ":", "-."]
    for i, (r, by_sampler) in enumerate(curves):
        for j, (sampler, pts) in enumerate(by_sampler.items()):
            nfe = [p["nfe"] for p in pts]
            fid = [p["fid"] for p in pts]
            err = [[p["fid"] - p["fid_lo"] for p in pts], [p["fid_hi"] - p["fid"] for p in pts]]
            kw = dict(color=f"C{i % 10}", ls=styles[j % 4], marker="o", capsize=3)
            axes[0].errorbar(nfe, fid, yerr=err, label=f"{r['model']}: {sampler}", **kw)
            axes[1].errorbar([p["samples_per_s"] for p in pts], fid, yerr=err, **kw)
    floor = floor_mean(rows, "fid")
    for ax, xlabel in zip(axes, ("network evaluations per sample (NFE)", "samples / s")):
        if floor is not None:
            ax.axhline(floor, ls="--", color="0.4", lw=1, label="real data")
        log_x_axis(ax, xlabel + " (log scale)", "FID (lower is better)")
    axes[0].legend(fontsize=7)
    return save(fig, path, "Quality vs sampling compute (error bars: 95% bootstrap intervals)")


def montage(rows: list[dict], path: Path) -> Path | None:
    """Every row's samples.png (its first completed run) side by side, titled; a row's
    nearest_neighbours.png (samples beside their nearest training images) below it, if any."""
    items = []
    for r in rows:
        for p in r["paths"][:1]:
            for name, what in (("samples.png", "samples"), ("nearest_neighbours.png", "vs train")):
                if p and (Path(p) / name).exists():
                    items.append((f"{r['model']} · {r['dataset']} · {what}", Path(p) / name))
    if not items:
        return None
    plt = pyplot()
    cols = min(len(items), 4)
    nrows = math.ceil(len(items) / cols)
    fig, axes = plt.subplots(nrows, cols, figsize=(3 * cols, 3.2 * nrows), dpi=110, squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, (title, png) in zip(axes.flat, items):
        ax.imshow(plt.imread(png))
        ax.set_title(title, fontsize=8)
    return save(fig, path)
