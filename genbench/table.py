"""genbench-table: collect runs, print the comparison table, write Markdown/CSV/LaTeX + plots.

genbench-table source=outputs/benchmark/digits [out_dir=...] [compare=[arm,vae]]
               [export_runs=docs/benchmark/digits/runs]
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig

from genbench.cli import check_command_line
from genbench.config import CONF_PACKAGE, register
from genbench.help_page import maybe_help

# What export_runs copies of each run: small files only (no checkpoints, no W&B folders).
EXPORTED = (
    "results.json",
    "floor.json",
    "test_nll_bpd.npy",
    "samples.png",
    "nearest_neighbours.png",
)


def export_runs(source: Path, dest: Path) -> int:
    """Copy every run's small files under `source` to the same relative place under `dest`."""
    n = 0
    for name in EXPORTED:
        for f in source.rglob(name):
            if dest in f.parents:
                continue
            target = dest / f.relative_to(source)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(f, target)
            n += 1
    return n


@hydra.main(version_base="1.3", config_path=CONF_PACKAGE, config_name="table")
def _main(cfg: DictConfig) -> None:
    """A missing source, a W&B login missing or a bad value ends in one line (exit status 1)."""
    try:
        _table(cfg)
    except (FileNotFoundError, ValueError) as e:
        sys.exit(f"genbench-table: error: {(str(e).strip().splitlines() or [repr(e)])[0]}")


def _table(cfg: DictConfig) -> None:
    from genbench.reporting.aggregate import aggregate
    from genbench.reporting.collect import collect, unfinished
    from genbench.reporting.paired import paired_difference, to_text
    from genbench.reporting.table_writers import to_markdown, write_all
    from genbench.reporting.wandb_report import publish, report_spec

    if cfg.compare and len(cfg.compare) != 2:  # before anything is read or written
        raise ValueError(f"compare={list(cfg.compare)}; valid: two model names, e.g. [arm,vae]")
    source = str(cfg.source)
    if cfg.export_runs:
        if "://" in source:
            raise ValueError("export_runs needs a folder source, not " + source)
        n = export_runs(Path(source), Path(cfg.export_runs))
        print(f"exported {n} files to {cfg.export_runs}")
        source = str(cfg.export_runs)  # the table is built from the copies, as a reader would
    records, problems = collect(source)
    for p in problems:
        print(f"skipped: {p}", file=sys.stderr)
    if not records:
        raise ValueError(
            f"no readable results under source={source!r}; give the folder a sweep wrote "
            "(hydra.sweep.dir, e.g. outputs/benchmark/digits) or a W&B source"
        )
    if cfg.export_wandb:
        from genbench.reporting.wandb_publish import offline_runs

        dest = Path(cfg.export_wandb)
        ids = offline_runs(records, dest, cfg.wandb_project, cfg.wandb_entity)
        print(f"{len(ids)} offline W&B runs -> {dest / 'wandb'}")
        print(f"upload: wandb sync {dest / 'wandb'}/offline-run-*")
    rows = aggregate(records)
    pending = unfinished(source) if "://" not in source else []
    default = Path(source) / "table" if "://" not in source else Path("outputs/table")
    out_dir = Path(cfg.out_dir) if cfg.out_dir else default
    written = write_all(rows, out_dir)
    print(to_markdown(rows))
    if pending:
        print(f"{len(pending)} job(s) started but not finished (rerun the sweep to complete):")
        print("\n".join(f"  {p}" for p in pending))
    if cfg.compare:
        text = to_text(paired_difference(records, *map(str, cfg.compare)))
        print(text)
        (out_dir / "paired.txt").write_text(text)
    if cfg.wandb_report:
        spec = report_spec(rows, cfg.wandb_entity, cfg.wandb_project, cfg.wandb_report_title)
        path = out_dir / "wandb_report.json"
        path.write_text(json.dumps(spec, indent=2) + "\n")
        written["wandb_report.json"] = path
        if os.environ.get("WANDB_MODE") == "online":
            print(f"W&B report: {publish(spec)}")
        else:
            print(f"W&B report spec -> {path} (publish: genbench-report {path})")
    print("wrote: " + ", ".join(str(p) for p in written.values()))


DESCRIPTION = (
    "collect runs (results.json under a folder, or W&B) and write the comparison table "
    "(Markdown, CSV, LaTeX) and its plots."
)
EXAMPLES = [
    "genbench-table source=docs/benchmark/digits/runs out_dir=outputs/table   # committed runs",
    "genbench-table source=docs/benchmark/digits/runs out_dir=outputs/table compare=[arm,vae]",
    "genbench-table source=outputs/benchmark/digits wandb_report=true   # + a W&B report spec",
]
NOTES = ["Publish a written report spec with: genbench-report <out_dir>/wandb_report.json"]


def main() -> None:
    """The console script: its help page, a check of the command line, then Hydra."""
    maybe_help("table", DESCRIPTION, EXAMPLES, NOTES)
    register()
    check_command_line("table")
    _main()


if __name__ == "__main__":
    main()
