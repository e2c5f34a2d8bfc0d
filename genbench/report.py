"""genbench-report: save a W&B Report from the spec genbench-table wrote (wandb_report.json).

wandb sync outputs/benchmark/digits/*/wandb/offline-run-*   # upload the offline runs
genbench-report docs/benchmark/digits/wandb_report.json [--entity E] [--project P]
"""

from __future__ import annotations

import argparse
import json
import os
import sys


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="genbench-report", description=__doc__.splitlines()[0])
    p.add_argument("spec", help="a wandb_report.json written by genbench-table wandb_report=true")
    p.add_argument("--entity", default=os.environ.get("WANDB_ENTITY"))
    p.add_argument("--project", default=None, help="default: the spec's project")
    a = p.parse_args(argv)
    import wandb

    from genbench.reporting.wandb_report import publish

    try:
        with open(a.spec) as f:
            spec = json.load(f)
        url = publish(spec, a.entity, a.project)
    except (OSError, ValueError, wandb.errors.Error) as e:  # W&B's: a network or API refusal
        sys.exit(f"genbench-report: error: {(str(e).strip().splitlines() or [repr(e)])[0]}")
    print(url)


if __name__ == "__main__":
    main()
