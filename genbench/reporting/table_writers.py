"""The comparison table as text: Markdown, CSV and LaTeX, one row per family/model/data set
(`aggregate.py`), the real-data floor as a footer row, the protocol below (`table_footer.py`);
`write_all` writes them and the plots (`table_plots.py`).

A cell reads `mean ± std (±w)`: mean and standard deviation over the seeds' runs, and w the
mean over runs of each run's own uncertainty (the standard error over test examples for
bits/dim; the half-width of the 95% bootstrap interval over generated samples for FID and KID).
"""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path

from genbench.core.keys import Column
from genbench.core.results import FLOOR_FAMILY
from genbench.reporting.aggregate import COLUMNS
from genbench.reporting.table_footer import KID_SCALES, footer
from genbench.reporting.table_plots import montage, plot_quality_vs_nfe, plot_quality_vs_speed

MISSING = "—"


def sig3(v: float) -> str:
    """Three significant digits without an exponent where that stays short: 2890, 28.9, 0.0289."""
    if v == 0 or not 1e-4 <= abs(v) < 1e6:
        return f"{v:.3g}"
    digits = max(0, 2 - math.floor(math.log10(abs(v))))
    return f"{round(v, digits):,.{digits}f}"


def kid_scale(row: dict) -> float:
    return KID_SCALES.get(row.get("fidelity_extractor") or "", 1.0)


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
