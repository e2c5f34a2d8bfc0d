"""genbench-table: collect runs, print the comparison table, write Markdown/CSV/LaTeX + plots."""

from __future__ import annotations

import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig

from genbench.config import CONF_PACKAGE, register


@hydra.main(version_base="1.3", config_path=CONF_PACKAGE, config_name="table")
def _main(cfg: DictConfig) -> None:
    from genbench.reporting.collect import collect
    from genbench.reporting.table import aggregate, to_markdown, write_all

    records, problems = collect(str(cfg.source))
    for p in problems:
        print(f"skipped: {p}", file=sys.stderr)
    if not records:
        sys.exit(f"genbench-table: no readable results under source={cfg.source!r}")
    rows = aggregate(records)
    default = Path(cfg.source) / "table" if "://" not in cfg.source else Path("outputs/table")
    written = write_all(rows, Path(cfg.out_dir) if cfg.out_dir else default)
    print(to_markdown(rows))
    print("wrote: " + ", ".join(str(p) for p in written.values()))


def main() -> None:
    """The console script: register the config schemas, then let Hydra compose and run."""
    register()
    _main()


if __name__ == "__main__":
    main()
