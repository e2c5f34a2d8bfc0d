"""load_results on the committed digits runs: nested results usable, the floor's row honest,
the columns documented, unreadable files named."""

from __future__ import annotations

import json
import re
import warnings
from pathlib import Path

import pandas as pd
import pytest

from genbench import expand, load_results
from genbench.core import results as res
from genbench.reporting.frame import COLUMNS

ROOT = Path(__file__).resolve().parents[2]
RUNS = ROOT / "docs" / "benchmark" / "digits" / "runs"


@pytest.fixture(scope="module")
def df():
    return load_results(str(RUNS))


def _record(run: pd.Series) -> dict:
    name = "floor.json" if run["family"] == res.FLOOR_FAMILY else "results.json"
    return json.loads((Path(run["path"]) / name).read_text())


def test_nested_results_are_the_files_and_expand_into_rows(df):
    ebm = df[(df["model"] == "ebm") & (df["seed"] == 1)].iloc[0]
    rec = _record(ebm)["metrics"]
    assert ebm["curve"] == rec["curve"] and ebm["log_z_ladder"] == rec["log_z_ladder"]
    files = [json.loads(f.read_text())["metrics"] for f in RUNS.rglob("results.json")]
    assert df["curve"].notna().sum() == sum(m["curve"] is not None for m in files) == 9

    curves = expand(df, "curve")
    with_curve = df[df["curve"].notna()]
    assert len(curves) == sum(len(c) for c in with_curve["curve"])
    for _, run in with_curve.iterrows():  # each point beside its own run's identity
        mine = curves[(curves["path"] == run["path"])]
        assert mine["fid"].tolist() == [p["fid"] for p in run["curve"]]
        assert set(mine["model"]) == {run["model"]} and set(mine["seed"]) == {run["seed"]}
    ladder = expand(df, "log_z_ladder")
    assert set(ladder["model"]) == {"ebm"} and "log_z" in ladder
    assert len(ladder) == sum(
        len(_record(r)["metrics"]["log_z_ladder"]) for _, r in df[df["model"] == "ebm"].iterrows()
    )
    with pytest.raises(ValueError, match="valid: log_z_ladder, dequantisation_ladder, curve"):
        expand(df, "fid")


def test_rows_no_seed_trained_have_no_seed_and_no_likelihood(df, tmp_path):
    floor = df[df["family"] == res.FLOOR_FAMILY].iloc[0]
    assert pd.isna(floor["seed"]) and floor["nll_kind"] == "none"
    assert df["seed"].dtype == "Int64"
    assert sorted(df.loc[df["model"] == "gan", "seed"]) == [0, 1, 2]
    assert set(df.loc[df["model"] == "gan", "nll_kind"]) == {"none"}
    external = res.new_record(res.EXTERNAL_FAMILY, "theirs", "digits", 0, "completed")
    res.write_results(tmp_path / "x" / "results.json", external)
    row = load_results(str(tmp_path)).iloc[0]
    assert pd.isna(row["seed"]) and row["nll_kind"] == "none"


def test_the_docstring_names_every_column(df):
    assert list(df.columns) == list(COLUMNS)
    words = set(re.findall(r"\w+", load_results.__doc__))
    assert [c for c in df.columns if c not in words] == []


def test_unreadable_files_are_each_named_in_a_warning_and_the_frame_keeps_its_columns(tmp_path):
    for name, text in (("a", '{"schema": 1, "sta'), ("b", "[1, 2]")):
        (tmp_path / name).mkdir()
        (tmp_path / name / "results.json").write_text(text)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        df = load_results(str(tmp_path))
    messages = [str(w.message) for w in caught]
    assert len(messages) == 2
    assert f"{tmp_path / 'a' / 'results.json'}: not valid JSON" in messages[0]
    assert f"{tmp_path / 'b' / 'results.json'}: top level is list" in messages[1]
    assert caught[0].filename == __file__  # the warning points at the caller's line
    assert df.empty and list(df.columns) == list(COLUMNS)
