"""The benchmark's comparison as a W&B Report, built with W&B's wandb-workspaces library.

`report_spec(rows, ...)` describes the report as plain JSON (what genbench-table writes to
wandb_report.json next to the table, offline, no account needed); `build_report(spec)` turns
that description into wandb-workspaces objects, and `publish(spec)` saves them to W&B and
returns the report's URL (needs a login; run it after `wandb sync` of the offline runs, e.g.
`genbench-report docs/benchmark/digits/wandb_report.json`).

The panels read what every genbench run logs: the flat config columns (family, model_name,
dataset_name, seed, budget_kind, budget_value, sampler, nfe, ema_decay, nll_kind), the summary
metrics under results.json's names, the curves `train/loss`, `val/nll_bpd`, `val/fid`, the
quality-vs-compute points `curve/fid` over `curve/nfe`, and the media `samples`,
`nearest_neighbours` and the `sample_table`.
"""

from __future__ import annotations

from genbench.core.results import FLOOR_FAMILY
from genbench.reporting.table_footer import footer
from genbench.reporting.table_writers import to_markdown

SPEC_VERSION = 1
PINNED = ["nll_bpd", "nll_bpd_stderr", "fid", "kid_mean", "precision", "recall", "samples_per_s"]


def _one(values, what: str) -> str:
    vals = sorted({str(v) for v in values if v is not None})
    if len(vals) != 1:
        raise ValueError(f"the report needs one {what}, the runs have {vals or 'none'}")
    return vals[0]


def report_spec(rows: list[dict], entity: str | None, project: str, title: str | None) -> dict:
    """A JSON-able description of the report for the runs behind `rows` (table.aggregate)."""
    runs = [r for row in rows if row["family"] != FLOOR_FAMILY for r in row["records"]]
    if not runs:
        raise ValueError("no completed runs to report on")
    experiment = _one(((r.get("config") or {}).get("experiment_name") for r in runs), "benchmark")
    dataset = _one((r["dataset"] for r in runs), "data set")
    filters = f"Config('experiment_name') = '{experiment}' and Config('dataset_name') = '{dataset}'"
    panels = [
        {
            "kind": "bar",
            "title": "test bits/dim per family (mean, error bars: std over seeds)",
            "metrics": ["nll_bpd"],
            "groupby": "family",
            "legend": "${config:family} (${config:nll_kind})",
        },
        {
            "kind": "scatter",
            "title": "FID vs samples/s (log x)",
            "x": "samples_per_s",
            "y": "fid",
            "log_x": True,
        },
        {
            "kind": "line",
            "title": "FID vs NFE (quality-vs-compute curves)",
            "x": "curve/nfe",
            "y": ["curve/fid"],
            "log_x": True,
        },
        {"kind": "line", "title": "validation bits/dim", "x": "Step", "y": ["val/nll_bpd"]},
        {"kind": "line", "title": "validation FID", "x": "Step", "y": ["val/fid"]},
        {"kind": "line", "title": "training loss", "x": "Step", "y": ["train/loss"]},
        {
            "kind": "media",
            "title": "samples, and samples beside their nearest training images",
            "keys": ["samples", "nearest_neighbours"],
        },
    ]
    return {
        "genbench_report_spec": SPEC_VERSION,
        "entity": entity,
        "project": project,
        "title": title or f"genbench: {experiment} on {dataset}",
        "description": f"{len(runs)} runs of {len({r['family'] for r in runs})} families",
        "runset": {
            "name": experiment,
            "filters": filters,
            "groupby": ["config.family"],
            "pinned_columns": [f"summary:{k}" for k in PINNED],
        },
        "blocks": [
            {"kind": "h1", "text": "The comparison"},
            {"kind": "markdown", "text": to_markdown(rows)},
            {"kind": "panels", "panels": panels},
            {"kind": "h2", "text": "Protocol and provenance"},
            {"kind": "markdown", "text": "\n".join(f"- {line}" for line in footer(rows))},
        ],
    }


def build_report(spec: dict, entity: str | None = None, project: str | None = None):
    """wandb-workspaces Report objects from a spec (entity/project override the spec's)."""
    import wandb_workspaces.reports.v2 as wr

    if spec.get("genbench_report_spec") != SPEC_VERSION:
        raise ValueError(f"not a genbench report spec (version {SPEC_VERSION} expected)")
    entity = entity or spec.get("entity")
    project = project or spec["project"]
    if not entity:
        raise ValueError("the report needs a W&B entity: set WANDB_ENTITY or pass --entity")
    rs = spec["runset"]
    runset = wr.Runset(
        entity=entity,
        project=project,
        name=rs["name"],
        filters=rs["filters"],
        groupby=rs["groupby"],
        pinned_columns=rs["pinned_columns"],
    )

    def panel(p: dict):
        s = wr.SummaryMetric
        if p["kind"] == "bar":
            return wr.BarPlot(
                title=p["title"],
                metrics=[s(m) for m in p["metrics"]],
                groupby=wr.Config(p["groupby"]),
                groupby_aggfunc="mean",
                groupby_rangefunc="stddev",
                legend_template=p["legend"],
            )
        if p["kind"] == "scatter":
            return wr.ScatterPlot(title=p["title"], x=s(p["x"]), y=s(p["y"]), log_x=p["log_x"])
        if p["kind"] == "line":
            return wr.LinePlot(title=p["title"], x=p["x"], y=p["y"], log_x=p.get("log_x"))
        if p["kind"] == "media":
            return wr.MediaBrowser(title=p["title"], media_keys=p["keys"])
        raise ValueError(f"unknown panel kind {p['kind']!r}; valid: bar, scatter, line, media")

    def block(b: dict):
        if b["kind"] in ("h1", "h2"):
            return getattr(wr, b["kind"].upper())(b["text"])
        if b["kind"] == "markdown":
            return wr.MarkdownBlock(text=b["text"])
        if b["kind"] == "panels":
            return wr.PanelGrid(runsets=[runset], panels=[panel(p) for p in b["panels"]])
        raise ValueError(f"unknown block kind {b['kind']!r}; valid: h1, h2, markdown, panels")

    return wr.Report(
        entity=entity,
        project=project,
        title=spec["title"],
        description=spec["description"],
        blocks=[block(b) for b in spec["blocks"]],
        width="fluid",
    )


def wandb_api():
    """wandb.Api(); without a W&B login, a one-line ValueError saying how to log in (W&B's
    report library raised a bare Exception with a traceback)."""
    import wandb

    try:
        return wandb.Api()
    except wandb.errors.UsageError as e:
        raise ValueError(f"W&B: {e} (or set WANDB_API_KEY)") from e


def publish(spec: dict, entity: str | None = None, project: str | None = None) -> str:
    """Save the report to W&B (network and login needed); return its URL."""
    wandb_api()  # the login, checked before anything is built
    report = build_report(spec, entity, project)
    report.save()
    return report.url
