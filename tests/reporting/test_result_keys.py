"""The consumers of the registry of result keys (genbench/core/keys.py): the table the committed
records give is the committed table, a full record survives a W&B run's summary and back key
for key, and the data frame, the table's footer and the scaling fits read one budget."""

from __future__ import annotations

import csv
import io
import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from genbench.core.keys import BY_NAME, METRIC_KEYS
from genbench.core.results import FLOOR_FAMILY, new_record
from genbench.reporting import scaling_fits
from genbench.reporting.aggregate import aggregate
from genbench.reporting.collect import collect, record_from_wandb
from genbench.reporting.frame import load_results
from genbench.reporting.loggers import wandb_summary
from genbench.reporting.table_footer import footer
from genbench.reporting.table_writers import to_csv, to_markdown
from genbench.reporting.wandb_publish import offline_runs

ROOT = Path(__file__).resolve().parents[2]
BENCHMARK = ROOT / "docs" / "benchmark"
# The committed tables were built before the EBM's label became "estimate" (docs/metrics.md)
# and before a record without metrics.selection named its monitor: all else is as built.
OLD_LABEL = "AIS estimate, low in expectation"


@pytest.mark.parametrize("name", ["digits", "mnist", "mnist-gpu"])
def test_the_committed_records_give_the_committed_table(name):
    records, problems = collect(str(BENCHMARK / name / "runs"))
    assert problems == []
    rows = aggregate(records)
    committed = (BENCHMARK / name / "table.md").read_text().replace(OLD_LABEL, "estimate")
    table, _, notes = to_markdown(rows).partition("\n\n")
    old_table, _, old_notes = committed.partition("\n\n")
    assert table == old_table  # every column: its title, order, format and uncertainty
    old_notes = old_notes.replace("the evaluated checkpoint:", "\0").splitlines()
    notes = notes.replace("the evaluated checkpoint:", "\0").splitlines()
    assert [n.split("\0")[0] for n in notes] == [n.split("\0")[0] for n in old_notes]
    # the CSV, number for number (its nll_kind column has the label)
    read = lambda text: list(csv.DictReader(io.StringIO(text)))  # noqa: E731
    old_csv = read((BENCHMARK / name / "table.csv").read_text().replace(OLD_LABEL, "estimate"))
    new_csv = read(to_csv(rows))
    # columns of keys declared after the table was built: in the rebuild, empty in every row
    added = [c for c in new_csv[0] if c not in old_csv[0]]
    assert all(r[c] == "" for r in new_csv for c in added), added
    assert [{k: r[k] for k in old_csv[0]} for r in new_csv] == old_csv


def _full(metrics: dict) -> dict:
    """`metrics` with a value of its declared type for every key it has not (the committed
    records predate the estimator and selection records and the dequantisation ladder)."""
    made = {
        "float": 0.125,
        "int": 7,
        "str": "made up",
        "bool": False,
        "dict": {
            "metric": "nll_bpd",
            "estimator": {"name": "EBM.nll", "chains": 16},
            "split": "test",
            "examples": 447,
            "subset_seed": None,
        },
        "list": [3, 0, 5],
        "interval": [1.5, 2.5],
        "points": [{"draws": 4, "nll_bpd": 2.1}, {"draws": 8, "nll_bpd": 2.05}],
    }
    return {k: made[BY_NAME[k].type] if metrics.get(k) is None else metrics[k] for k in METRIC_KEYS}


def test_a_full_record_survives_the_wandb_summary_and_back_key_for_key(tmp_path):
    """A committed EBM run (curve, AIS ladder, class counts, ...), every other key filled in,
    logged to an offline W&B run as training logs it (loggers.log_metrics) and read back by
    collect's record_from_wandb: equal on every registered key, ints as ints."""
    run = tmp_path / "ebm_digits_seed0"
    shutil.copytree(BENCHMARK / "digits" / "runs" / run.name, run)
    record = json.loads((run / "results.json").read_text())
    record["metrics"] = _full(record["metrics"])
    assert all(v is not None for v in record["metrics"].values())
    record["_path"] = str(run)
    offline_runs([record], tmp_path / "wandb_out", "genbench-test", None)

    (back,), problems = collect(f"wandb-offline://{tmp_path / 'wandb_out'}")
    assert problems == []
    assert list(back["metrics"]) == list(METRIC_KEYS)
    for key in METRIC_KEYS:
        assert back["metrics"][key] == record["metrics"][key], key
        if BY_NAME[key].type == "int":
            assert type(back["metrics"][key]) is int, key
    assert {k: back[k] for k in ("family", "model", "dataset", "seed", "status")} == {
        k: record[k] for k in ("family", "model", "dataset", "seed", "status")
    }
    # what the table needs of the extractor survives: KID in the classifier's unit
    assert back["metrics"]["fidelity_extractor"] == "classifier"


def test_a_key_not_computed_is_null_in_the_summary_and_reads_back_null():
    record = new_record("vae", "vae", "moons", 0, "completed")
    record["metrics"].update(fid=3.0, nfe=1)
    summary = wandb_summary(record)
    assert summary["fid"] == 3.0 and summary["nfe"] == 1.0 and summary["fid_ci"] is None
    assert summary["test/fid_ci"] is None and "test/fid" not in summary  # history logs numbers
    back = record_from_wandb(json.loads(json.dumps(summary)), "a-run")
    assert back["metrics"] == record["metrics"] and type(back["metrics"]["nfe"]) is int


def _run(model: str, budget: dict, seed: int = 0) -> dict:
    record = new_record(model, model, "digits", seed, "completed")
    record["config"] = {"budget": budget, "callbacks": {}}
    record["metrics"].update(nll_bpd=2.0 + seed / 10, fid=30.0, nll_kind="exact")
    return record


def test_the_frame_the_footer_and_the_scaling_fits_read_one_budget(tmp_path):
    runs = {
        "flops": _run("flow", {"kind": "flops", "flops": 2e12, "validations": 5}),
        "steps": _run("vae", {"kind": "steps", "steps": 300, "validations": 4}),
        "time": _run("gan", {"kind": "time", "max_time": "00:00:05:00"}),
    }
    for kind, rec in runs.items():
        folder = tmp_path / kind
        folder.mkdir()
        (folder / "results.json").write_text(json.dumps(rec))
    df = load_results(str(tmp_path)).set_index("budget_kind")
    assert df.loc["flops", "budget_value"] == 2e12 and df.loc["steps", "budget_value"] == 300
    assert pd.isna(df.loc["time", "budget_value"])  # a clock string, not an amount
    text = " ".join(footer(aggregate(list(runs.values()))))
    assert "2e+12 training FLOPs" in text and "300 optimiser steps" in text
    assert "00:00:05:00 of wall-clock training" in text and "4, 5 times" in text
    # only a FLOP budget is a point of a compute-scaling fit
    assert scaling_fits.collect_points(list(runs.values()), "nll_bpd") == {"flow": {2e12: [2.0]}}
    floor = _run(FLOOR_FAMILY, {"kind": "flops", "flops": 2e12})
    assert scaling_fits.collect_points([floor], "nll_bpd") == {}
