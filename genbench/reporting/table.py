"""The comparison table: one row per family/model/data set, mean ± std over seeds."""

from __future__ import annotations

import csv
import io
import math
from collections import defaultdict
from pathlib import Path

import numpy as np

# (results.json key, column title, formatter)
COLUMNS = [
    ("nll_bpd", "bits/dim", "{:.3f}"),
    ("fid", "FID", "{:.2f}"),
    ("kid_mean", "KID", "{:.4f}"),
    ("is_mean", "IS", "{:.2f}"),
    ("precision", "precision", "{:.3f}"),
    ("recall", "recall", "{:.3f}"),
    ("samples_per_s", "samples/s", "{:.3g}"),
    ("nfe", "NFE", "{:.0f}"),
    ("params", "params", None),
    ("train_time_s", "train time (s)", "{:.0f}"),
]
MISSING = "—"


def _params(v: float) -> str:
    return f"{v / 1e6:.2f}M" if v >= 1e6 else f"{v / 1e3:.1f}k"


def _num(v) -> float | None:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        return None
    return float(v)


def aggregate(records: list[dict]) -> list[dict]:
    """Group records by (family, model, dataset); mean/std of each metric over completed runs."""
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for r in records:
        groups[(r["family"], r["model"], r["dataset"])].append(r)
    rows = []
    for (family, model, dataset), runs in sorted(
        groups.items(), key=lambda kv: (kv[0][2], kv[0][0], kv[0][1])
    ):
        done = [r for r in runs if r["status"] == "completed"]
        row = {
            "family": family,
            "model": model,
            "dataset": dataset,
            "runs": len(runs),
            "completed": len(done),
            "seeds": sorted({r["seed"] for r in done}),
            "status": ", ".join(sorted({r["status"] for r in runs})),
            "nll_kind": next((r["metrics"].get("nll_kind") for r in done), None),
            "paths": [r.get("_path") for r in done],
        }
        for key, _, _ in COLUMNS:
            vals = [v for v in (_num(r["metrics"].get(key)) for r in done) if v is not None]
            row[f"{key}_mean"] = float(np.mean(vals)) if vals else None
            row[f"{key}_std"] = float(np.std(vals, ddof=1)) if len(vals) > 1 else None
        rows.append(row)
    return rows


def _cell(row: dict, key: str, fmt: str | None, pm: str = " ± ") -> str:
    mean, std = row[f"{key}_mean"], row[f"{key}_std"]
    if mean is None:
        return MISSING
    f = _params if fmt is None else fmt.format
    text = f(mean)
    if key == "nll_bpd" and row["nll_kind"] not in (None, "exact"):
        text += f" ({row['nll_kind']})"
    return text + (f"{pm}{f(std)}" if std is not None else "")


def header() -> list[str]:
    return ["family", "model", "dataset", "runs"] + [title for _, title, _ in COLUMNS]


def cells(row: dict, pm: str = " ± ") -> list[str]:
    runs = f"{row['completed']}/{row['runs']}"
    if row["completed"] < row["runs"]:
        runs += f" ({row['status']})"
    return [row["family"], row["model"], row["dataset"], runs] + [
        _cell(row, key, fmt, pm) for key, _, fmt in COLUMNS
    ]


def to_markdown(rows: list[dict]) -> str:
    lines = ["| " + " | ".join(header()) + " |", "|" + "---|" * len(header())]
    lines += ["| " + " | ".join(cells(r)) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def to_latex(rows: list[dict]) -> str:
    def esc(s: str) -> str:
        return s.replace("_", r"\_").replace("%", r"\%").replace("±", r"$\pm$")

    out = [
        r"\begin{tabular}{" + "lll" + "r" * (len(header()) - 3) + "}",
        r"\toprule",
        " & ".join(esc(h) for h in header()) + r" \\",
        r"\midrule",
    ]
    out += [" & ".join(esc(c) for c in cells(r)) + r" \\" for r in rows]
    out += [r"\bottomrule", r"\end{tabular}"]
    return "\n".join(out) + "\n"


def to_csv(rows: list[dict]) -> str:
    """Machine-readable: mean and std columns per metric; empty cells where not computed."""
    keys = ["family", "model", "dataset", "runs", "completed", "status", "nll_kind"]
    keys += [f"{k}_{s}" for k, _, _ in COLUMNS for s in ("mean", "std")]
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(keys)
    for r in rows:
        w.writerow(["" if r.get(k) is None else r[k] for k in keys])
    return buf.getvalue()


def plot_quality_vs_speed(rows: list[dict], path: Path) -> Path | None:
    """FID and bits/dim against samples/s (log scale), one point per row."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [("fid_mean", "FID (lower is better)"), ("nll_bpd_mean", "bits/dim (lower is better)")]
    fig, axes = plt.subplots(1, 2, figsize=(10, 4), dpi=110)
    plotted = 0
    for ax, (key, label) in zip(axes, panels):
        for i, r in enumerate(rows):
            x, y = r["samples_per_s_mean"], r[key]
            if x is None or y is None:
                continue
            ax.scatter(x, y, color=f"C{i % 10}", s=30)
            ax.annotate(
                f"{r['model']} ({r['dataset']})",
                (x, y),
                fontsize=7,
                xytext=(3, 3),
                textcoords="offset points",
            )
            plotted += 1
        ax.set(xscale="log", xlabel="samples / s (log scale)", ylabel=label)
        ax.grid(alpha=0.3)
    fig.suptitle("Quality vs sampling speed")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path if plotted else None


def montage(rows: list[dict], path: Path) -> Path | None:
    """Every row's samples.png (its first completed run) side by side, titled."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    items = [
        (r, Path(p) / "samples.png")
        for r in rows
        for p in r["paths"][:1]
        if p and (Path(p) / "samples.png").exists()
    ]
    if not items:
        return None
    cols = min(len(items), 4)
    nrows = math.ceil(len(items) / cols)
    fig, axes = plt.subplots(nrows, cols, figsize=(3 * cols, 3.2 * nrows), dpi=110, squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, (r, png) in zip(axes.flat, items):
        ax.imshow(plt.imread(png))
        ax.set_title(f"{r['model']} · {r['dataset']}", fontsize=9)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def write_all(rows: list[dict], out_dir: Path) -> dict[str, Path]:
    """Write table.md, table.csv, table.tex, quality_vs_speed.png, samples_montage.png."""
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
        ("samples_montage.png", montage),
    ):
        p = fn(rows, out_dir / name)
        if p is not None:
            written[name] = p
    return written
