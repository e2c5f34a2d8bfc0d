"""The comparison table: one row per family/model/data set, mean ± std over seeds, each run's
own uncertainty beside it, the real-data floor as a footer row, the protocol and provenance.

A cell reads `mean ± std (±w)`: mean and standard deviation over the seeds' runs, and w the
mean over runs of each run's own uncertainty (the standard error over test examples for
bits/dim; the half-width of the 95% bootstrap interval over generated samples for FID and KID).
"""

from __future__ import annotations

import csv
import io
import math
from collections import defaultdict
from pathlib import Path

import numpy as np

from genbench.core.keys import BY_NAME, TABLE_COLUMNS, Column
from genbench.core.results import FLOOR_FAMILY, budget_kind_value, run_budget
from genbench.reporting.estimator_notes import estimate_note, selection_note

MISSING = "—"


# The columns, left to right: each key's title, format, uncertainty and flags are declared with
# the key (core/keys.py).
COLUMNS: list[Column] = list(TABLE_COLUMNS)
KIND_MARKERS = {"exact": "o", "bound": "s", "estimate": "^"}
# KID's displayed scale per feature extractor (metrics.fidelity_extractor), named in the footer:
# x10^3 for InceptionV3 (the usual convention), unscaled for the data sets' classifiers, whose
# larger features put KID in the thousands.
KID_SCALES = {"inception": 1e3}


def _num(v) -> float | None:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        return None
    return float(v)


def _within(metrics: dict, spec: str) -> float | None:
    """A run's own uncertainty: a standard error, or the half-width of a [lo, hi] interval."""
    v = metrics.get(spec)
    if BY_NAME[spec].type == "interval":
        if isinstance(v, (list, tuple)) and len(v) == 2 and all(_num(x) is not None for x in v):
            return (v[1] - v[0]) / 2
        return None
    return _num(v)


def _kind_label(done: list[dict]) -> str | None:
    """'exact', 'bound' or 'estimate' (no direction claimed: the footer says why)."""
    return next((r["metrics"].get("nll_kind") for r in done), None)


def sig3(v: float) -> str:
    """Three significant digits without an exponent where that stays short: 2890, 28.9, 0.0289."""
    if v == 0 or not 1e-4 <= abs(v) < 1e6:
        return f"{v:.3g}"
    digits = max(0, 2 - math.floor(math.log10(abs(v))))
    return f"{round(v, digits):,.{digits}f}"


def kid_scale(row: dict) -> float:
    return KID_SCALES.get(row.get("fidelity_extractor") or "", 1.0)


def aggregate(records: list[dict]) -> list[dict]:
    """Group records by (family, model, dataset); mean/std of each metric over completed runs."""
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for r in records:
        groups[(r["family"], r["model"], r["dataset"])].append(r)
    rows = []
    for (family, model, dataset), runs in sorted(
        groups.items(), key=lambda kv: (kv[0][2], kv[0][0] == FLOOR_FAMILY, kv[0][0], kv[0][1])
    ):
        done = [r for r in runs if r["status"] == "completed"]
        samplers = sorted({str(r["metrics"].get("sampler")) for r in done} - {"None"})
        row = {
            "family": family,
            "model": model,
            "dataset": dataset,
            "runs": len(runs),
            "completed": len(done),
            "seeds": sorted({r["seed"] for r in done}),
            "status": ", ".join(sorted({r["status"] for r in runs})),
            "nll_kind": _kind_label(done),
            "log_z_unconverged": any(r["metrics"].get("log_z_converged") is False for r in done),
            "fidelity_extractor": next(
                (r["metrics"].get("fidelity_extractor") for r in done), None
            ),
            "sampler": ", ".join(samplers) or None,
            "paths": [r.get("_path") for r in done],
            "records": done,
        }
        for col in COLUMNS:
            vals = [v for v in (_num(r["metrics"].get(col.key)) for r in done) if v is not None]
            row[f"{col.key}_mean"] = float(np.mean(vals)) if vals else None
            row[f"{col.key}_std"] = float(np.std(vals, ddof=1)) if len(vals) > 1 else None
            if col.within:
                w = [x for x in (_within(r["metrics"], col.within) for r in done) if x is not None]
                row[f"{col.key}_within"] = float(np.mean(w)) if w else None
        rows.append(row)
    return rows


def _params(v: float) -> str:
    return f"{v / 1e6:.2f}M" if v >= 1e6 else f"{v / 1e3:.1f}k"


def _cell(row: dict, col: Column, pm: str = " ± ") -> str:
    mean = row[f"{col.key}_mean"]
    if mean is None:
        return MISSING
    f = {None: _params, "sig3": sig3}.get(col.fmt, None) or col.fmt.format
    scale = col.scale * (kid_scale(row) if col.key == "kid_mean" else 1.0)
    text = f(mean * scale)
    std = row[f"{col.key}_std"]
    if std is not None and not (col.protocol and std == 0):
        text += f"{pm}{f(std * scale)}"
    within = row.get(f"{col.key}_within")
    if within is not None:
        text += f" ({pm.strip()}{f(within * scale)})"
    if col.key == "nll_bpd" and row["nll_kind"] not in (None, "exact"):
        text += f" {row['nll_kind']}" + ("†" if row["log_z_unconverged"] else "")
    return text


def shown_columns(rows: list[dict]) -> list[Column]:
    return [
        c for c in COLUMNS if not c.optional or any(r[f"{c.key}_mean"] is not None for r in rows)
    ]


def header(rows: list[dict]) -> list[str]:
    return (
        ["family", "model", "dataset", "seeds"]
        + [c.title for c in shown_columns(rows)]
        + ["sampler"]
    )


def cells(row: dict, columns: list[Column], pm: str = " ± ") -> list[str]:
    if row["family"] == FLOOR_FAMILY:
        runs = "—"
    else:
        runs = f"{row['completed']}/{row['runs']}"
        if row["completed"] < row["runs"]:
            runs += f" ({row['status']})"
    label = "real data" if row["family"] == FLOOR_FAMILY else row["family"]
    return (
        [label, row["model"], row["dataset"], runs]
        + [_cell(row, c, pm) for c in columns]
        + [row["sampler"] or MISSING]
    )


def _distinct(values) -> str:
    vals = sorted({str(v) for v in values if v is not None})
    return ", ".join(vals) if vals else "unknown"


def _applied_decay(runs: list[dict]) -> str:
    """The warm-up's decay at the evaluated weights' last update, over the runs that record it."""
    applied = [r["metrics"].get("ema_decay_applied") for r in runs]
    applied = [a for a in applied if a is not None]
    if not applied:
        return ""
    lo, hi = min(applied), max(applied)
    span = f"{lo:.4f}" if f"{lo:.4f}" == f"{hi:.4f}" else f"{lo:.4f} to {hi:.4f}"
    return f", with a warm-up: the decay the evaluated weights' last update applied was {span}"


def _budget(record: dict) -> str:
    """A trained run's budget, in words."""
    kind, amount = budget_kind_value(record)
    if kind == "flops":
        return f"{amount:.3g} training FLOPs (forward + backward, PyTorch's counter)"
    if kind == "steps":
        return f"{amount} optimiser steps"
    if kind == "time":
        return f"{amount} of wall-clock training (machine-dependent)"
    return "unknown"


def footer(rows: list[dict]) -> list[str]:
    """The protocol and provenance the numbers come from, read from the records themselves."""
    runs = [r for row in rows if row["family"] != FLOOR_FAMILY for r in row["records"]]
    if not runs:
        return []
    # Budget, validation, checkpoint rule, EMA and seeds describe the trained runs; a baseline
    # fitted in closed form or samples made elsewhere have none of them (listed apart).
    references = {r["model"]: _untrained_source(r) for r in runs if _untrained_source(r)}
    trained = [r for r in runs if not _untrained_source(r)]
    cfgs = [r.get("config") or {} for r in trained]

    def ema(c: dict) -> str:
        e = (c.get("callbacks") or {}).get("ema")
        return f"EMA decay {e.get('decay')} (all families)" if e else "no EMA"

    seeds = sorted({r["seed"] for r in trained})
    versions = [r.get("versions") or {} for r in runs]
    # The code that evaluated a run: its re-evaluation's where it was re-evaluated.
    evaluated_by = [r.get("reevaluated_with") or r.get("versions") or {} for r in runs]
    extractors = sorted({str(row.get("fidelity_extractor")) for row in rows} - {"None"})
    kid_units = "; ".join(
        f"{e} features: {'x10³' if KID_SCALES.get(e) == 1e3 else 'unscaled'}" for e in extractors
    )
    lines = []
    if trained:
        validations = _distinct(run_budget(r).get("validations") for r in trained)
        lines += [
            f"Budget per run: {_distinct(_budget(r) for r in trained)}; validation outside the "
            f"budget, {validations} times, evenly spaced; {selection_note(trained)}",
            f"Weights: {_distinct(ema(c) for c in cfgs)}{_applied_decay(trained)}. "
            f"Seeds: {', '.join(map(str, seeds))}.",
        ]
    lines += [
        f"Sample quality: {_distinct(r['metrics'].get('fidelity_num_samples') for r in runs)} "
        "generated samples vs the test split, features: "
        f"{_distinct(r['metrics'].get('fidelity_extractor') for r in runs)}.",
        "Cells: mean ± std over seeds (± each run's own uncertainty: the standard error over "
        "test examples for bits/dim, with an AIS estimate's spread over repetitions for the EBM; "
        "the 95% bootstrap half-width over generated samples for FID and KID). bits/dim of "
        f"{_nll_of(runs)}; its kind follows the number. KID ({kid_units or 'none'}).",
        f"Provenance: trained by genbench {_commits(versions)}; evaluated by genbench "
        f"{_commits(evaluated_by)}; torch {_distinct(v.get('torch') for v in versions)}"
        f", lightning {_distinct(v.get('lightning') for v in versions)}, torch-fidelity "
        f"{_distinct(v.get('torch_fidelity') for v in versions)}; machine "
        f"{_distinct(v.get('machine') for v in versions)}; device "
        f"{_distinct(r.get('device') for r in runs)}.",
    ]
    if references:
        listed = "; ".join(f"{model} ({source})" for model, source in references.items())
        lines.append(f"Not trained under the budget: {listed}.")
    note = estimate_note(trained)
    if note:
        lines.append(note)
    if any(row["log_z_unconverged"] for row in rows):
        lines.append(
            "†: the AIS ladder reached its longest schedule and its last doubling still moved "
            "log Z by more than the spread of independent repetitions (metrics.log_z_ladder)."
        )
    return lines


def _nll_of(runs: list[dict]) -> str:
    """What a bits/dim cell measures: the discrete data's probability (images) or the density
    (continuous 2-D points, whose bits/dim can be negative)."""
    kinds = {
        "the density (continuous points)"
        if str(((r.get("config") or {}).get("dataset") or {}).get("_target_", "")).endswith(
            "Toy2DDataModule"
        )
        else "the discrete data"
        for r in runs
    }
    return " / ".join(sorted(kinds, reverse=True))


def _untrained_source(record: dict) -> str | None:
    """How a row not trained under the budget was made (a fitted baseline, samples made
    elsewhere), or None for a trained run."""
    if record.get("baseline"):
        return record["baseline"].get("fitted")
    if record.get("external"):
        ext = record["external"]
        return f"{ext.get('count')} samples from {ext.get('samples')}"
    return None


def _commits(versions: list[dict]) -> str:
    commits = {(v.get("git_commit") or "")[:10] or None: v.get("git_dirty") for v in versions}
    return ", ".join(
        f"{c} ({'dirty' if d else 'clean' if d is False else 'state unknown'})"
        for c, d in sorted(commits.items(), key=lambda kv: str(kv[0]))
    )


def to_markdown(rows: list[dict]) -> str:
    cols = shown_columns(rows)
    head = header(rows)
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(cells(r, cols)) + " |" for r in rows]
    notes = footer(rows)
    return (
        "\n".join(lines)
        + "\n"
        + ("\n" + "\n".join(f"- {n}" for n in notes) + "\n" if notes else "")
    )


def to_latex(rows: list[dict]) -> str:
    def esc(s: str) -> str:
        return (
            s.replace("_", r"\_")
            .replace("%", r"\%")
            .replace("±", r"$\pm$")
            .replace("×10³", r"$\times 10^3$")
            .replace("x10³", r"$\times 10^3$")
            .replace("≥", r"$\geq$")
            .replace("†", r"$^\dagger$")
        )

    cols = shown_columns(rows)
    head = header(rows)
    out = [
        r"\begin{tabular}{" + "llll" + "r" * len(cols) + "l}",
        r"\toprule",
        " & ".join(esc(h) for h in head) + r" \\",
        r"\midrule",
    ]
    out += [" & ".join(esc(c) for c in cells(r, cols)) + r" \\" for r in rows]
    out += [r"\bottomrule", r"\end{tabular}"]
    out += [f"% {n}" for n in footer(rows)]
    return "\n".join(out) + "\n"


def to_csv(rows: list[dict]) -> str:
    """Machine-readable: mean, std and per-run uncertainty per metric; empty where not computed."""
    keys = ["family", "model", "dataset", "runs", "completed", "status", "nll_kind", "sampler"]
    for c in COLUMNS:
        keys += [f"{c.key}_mean", f"{c.key}_std"] + ([f"{c.key}_within"] if c.within else [])
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(keys)
    for r in rows:
        w.writerow(["" if r.get(k) is None else r[k] for k in keys])
    return buf.getvalue()


def _floor(rows: list[dict], key: str) -> float | None:
    return next((r[f"{key}_mean"] for r in rows if r["family"] == FLOOR_FAMILY), None)


def plot_quality_vs_speed(rows: list[dict], path: Path) -> Path | None:
    """FID and bits/dim against samples/s (log x): error bars = std over seeds, marker = the
    NLL's kind, the real-data FID floor as a dashed line; a legend instead of point labels."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

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
    floor = _floor(rows, "fid")
    if floor is not None:
        axes[0].axhline(floor, ls="--", color="0.4", lw=1, label="real data (train vs test)")
    for ax, title in zip(axes, ("FID (lower is better)", "bits/dim (lower is better)")):
        ax.set(xscale="log", xlabel="samples / s (log scale)", ylabel=title)
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7, loc="best")
    fig.suptitle("Quality vs sampling speed (error bars: std over seeds)")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path if plotted else None


def curve_points(row: dict) -> dict[str, list[dict]]:
    """Per sampler: [{nfe, fid, fid_lo, fid_hi, samples_per_s}] averaged over the row's seeds."""
    acc: dict[tuple[str, int], list[dict]] = defaultdict(list)
    for rec in row["records"]:
        for p in rec["metrics"].get("curve") or []:
            if _num(p.get("fid")) is not None and _num(p.get("nfe")) is not None:
                acc[(str(p.get("sampler")).rsplit("-", 1)[0], int(p["nfe"]))].append(p)
    out: dict[str, list[dict]] = defaultdict(list)
    for (sampler, nfe), pts in sorted(acc.items()):
        cis = [p["fid_ci"] for p in pts if isinstance(p.get("fid_ci"), (list, tuple))]
        fid = float(np.mean([p["fid"] for p in pts]))
        out[sampler].append(
            {
                "nfe": nfe,
                "fid": fid,
                "fid_lo": float(np.mean([c[0] for c in cis])) if cis else fid,
                "fid_hi": float(np.mean([c[1] for c in cis])) if cis else fid,
                "samples_per_s": float(np.mean([p.get("samples_per_s") or np.nan for p in pts])),
            }
        )
    return out


def plot_quality_vs_nfe(rows: list[dict], path: Path) -> Path | None:
    """FID against NFE and against samples/s for every row with a curve (metrics.curve)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    curves = [(r, curve_points(r)) for r in rows if r["family"] != FLOOR_FAMILY]
    curves = [(r, c) for r, c in curves if c]
    if not curves:
        return None
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), dpi=110)
    styles = ["-", "--", ":", "-."]
    for i, (r, by_sampler) in enumerate(curves):
        for j, (sampler, pts) in enumerate(by_sampler.items()):
            nfe = [p["nfe"] for p in pts]
            fid = [p["fid"] for p in pts]
            err = [[p["fid"] - p["fid_lo"] for p in pts], [p["fid_hi"] - p["fid"] for p in pts]]
            kw = dict(color=f"C{i % 10}", ls=styles[j % 4], marker="o", capsize=3)
            axes[0].errorbar(nfe, fid, yerr=err, label=f"{r['model']}: {sampler}", **kw)
            axes[1].errorbar([p["samples_per_s"] for p in pts], fid, yerr=err, **kw)
    floor = _floor(rows, "fid")
    for ax, xlabel in zip(axes, ("network evaluations per sample (NFE)", "samples / s")):
        if floor is not None:
            ax.axhline(floor, ls="--", color="0.4", lw=1, label="real data")
        ax.set(xscale="log", xlabel=xlabel + " (log scale)", ylabel="FID (lower is better)")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    fig.suptitle("Quality vs sampling compute (error bars: 95% bootstrap intervals)")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def montage(rows: list[dict], path: Path) -> Path | None:
    """Every row's samples.png (its first completed run) side by side, titled; a row's
    nearest_neighbours.png (samples beside their nearest training images) below it, if any."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    items = []
    for r in rows:
        for p in r["paths"][:1]:
            for name, what in (("samples.png", "samples"), ("nearest_neighbours.png", "vs train")):
                if p and (Path(p) / name).exists():
                    items.append((f"{r['model']} · {r['dataset']} · {what}", Path(p) / name))
    if not items:
        return None
    cols = min(len(items), 4)
    nrows = math.ceil(len(items) / cols)
    fig, axes = plt.subplots(nrows, cols, figsize=(3 * cols, 3.2 * nrows), dpi=110, squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, (title, png) in zip(axes.flat, items):
        ax.imshow(plt.imread(png))
        ax.set_title(title, fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def write_all(rows: list[dict], out_dir: Path) -> dict[str, Path]:
    """Write table.md/.csv/.tex, quality_vs_speed.png, quality_vs_nfe.png, samples_montage.png."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = {}
    for name, text in (
        ("table.md", to_markdown(rows)),
        ("table.csv", to_csv(rows)),
        ("table.tex", to_latex(rows)),
    ):
        (out_dir / name).write_text(text)
        written[name] = out_dir / name
    for name, fn in (
        ("quality_vs_speed.png", plot_quality_vs_speed),
        ("quality_vs_nfe.png", plot_quality_vs_nfe),
        ("samples_montage.png", montage),
    ):
        p = fn(rows, out_dir / name)
        if p is not None:
            written[name] = p
    return written
