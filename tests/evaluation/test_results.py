"""results.json round-trips, is validated, and is written atomically."""

from __future__ import annotations

import json

import pytest

from genbench.core.results import (
    ResultsError,
    atomic_write_text,
    empty_metrics,
    read_results,
    write_results,
)


def _record(**kw):
    rec = {
        "schema": 1,
        "status": "completed",
        "family": "vae",
        "model": "vae",
        "dataset": "digits",
        "seed": 0,
        "metrics": {**empty_metrics(), "nll_bpd": 2.1},
        "config": {"a": 1},
        "versions": {},
        "device": "cpu (2 threads)",
        "created": "2026-01-01T00:00:00+00:00",
    }
    rec.update(kw)
    return rec


def test_round_trip_keeps_nulls(tmp_path):
    path = tmp_path / "results.json"
    write_results(path, _record())
    back = read_results(path)
    assert back == _record()
    assert back["metrics"]["fid"] is None  # not computed: null, never 0


def test_failed_write_leaves_previous_file_intact(tmp_path):
    path = tmp_path / "results.json"
    write_results(path, _record())
    before = path.read_text()
    with pytest.raises(TypeError):
        atomic_write_text(path, 12345)  # fails inside the write, after the temp file exists
    assert path.read_text() == before
    assert [p.name for p in tmp_path.iterdir()] == ["results.json"]  # no temp file left


@pytest.mark.parametrize(
    "text,match",
    [
        ("{not json", "not valid JSON"),
        (json.dumps({"schema": 1}), "missing keys"),
        (json.dumps(_record(schema=7)), "schema=7"),
        (json.dumps(_record(status="weird")), "status='weird'"),
    ],
)
def test_malformed_files_rejected_with_one_line(tmp_path, text, match):
    path = tmp_path / "results.json"
    path.write_text(text)
    with pytest.raises(ResultsError, match=match) as e:
        read_results(path)
    assert str(path) in str(e.value) and "\n" not in str(e.value)


def test_non_finite_metrics_written_as_null(tmp_path):
    path = tmp_path / "results.json"
    write_results(
        path,
        _record(
            metrics={**empty_metrics(), "nll_bpd": float("nan"), "fid": float("inf"), "params": 10}
        ),
    )
    metrics = json.loads(path.read_text())["metrics"]
    assert metrics["nll_bpd"] is None and metrics["fid"] is None and metrics["params"] == 10


def test_results_files_get_the_mode_a_plain_write_gives_them(tmp_path):
    """Written through a temporary file, results.json still gets 0o666 less the umask (0o644
    under the usual 022), not mkstemp's 0o600: readable to a group on a shared cluster."""
    import os
    import stat

    old = os.umask(0o022)
    try:
        write_results(tmp_path / "results.json", _record())
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "results.json").stat().st_mode) == 0o644
