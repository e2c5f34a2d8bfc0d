"""The registry of result keys (genbench/core/keys.py): every key the committed records hold is
declared, the groups other modules import are its partition, and a registry that contradicts
itself fails at import, naming the entry."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from genbench.core import keys
from genbench.core import results as res

ROOT = Path(__file__).resolve().parents[2]
RECORDS = sorted(
    p
    for name in ("digits", "mnist")
    for pattern in ("results.json", "floor.json")
    for p in (ROOT / "docs" / "benchmark" / name / "runs").rglob(pattern)
)
GROUP_TUPLES = {
    "nll": res.NLL_KEYS,
    "estimate": res.ESTIMATE_KEYS,
    "fidelity": res.FIDELITY_KEYS,
    "memorisation": res.MEMORISATION_KEYS,
    "memorisation_pixels": res.PIXEL_MEMORISATION_KEYS,
    "class": res.CLASS_KEYS,
    "spectrum": res.SPECTRUM_KEYS,
    "mixing": res.MIXING_KEYS,
    "latent": res.LATENT_KEYS,
    "sampling": res.SAMPLING_KEYS,
    "run": res.RUN_KEYS,
    "evaluation": res.EVALUATION_KEYS,
}


def _metrics(path: Path) -> list[dict]:
    """A record's metrics and those of the evaluations it replaced (its history)."""
    record = json.loads(path.read_text())
    return [record["metrics"], *(old["metrics"] for old in record.get("history") or [])]


def _of_type(value, declared: str) -> bool:
    checks = {
        "float": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
        "int": lambda v: isinstance(v, int) and not isinstance(v, bool),
        "str": lambda v: isinstance(v, str),
        "bool": lambda v: isinstance(v, bool),
        "dict": lambda v: isinstance(v, dict),
        "list": lambda v: isinstance(v, list) and all(isinstance(x, (int, float)) for x in v),
        "interval": lambda v: isinstance(v, list) and len(v) == 2,
        "points": lambda v: isinstance(v, list) and all(isinstance(x, dict) for x in v),
    }
    return value is None or checks[declared](value)


def test_every_key_of_the_committed_records_is_declared_with_its_type():
    assert len(RECORDS) > 25  # digits (22) and MNIST (9): the runs and their floors
    seen: set[str] = set()
    for path in RECORDS:
        for metrics in _metrics(path):
            undeclared = sorted(set(metrics) - set(keys.METRIC_KEYS))
            assert not undeclared, f"{path}: {undeclared} not in genbench/core/keys.py"
            wrong = [k for k, v in metrics.items() if not _of_type(v, keys.BY_NAME[k].type)]
            assert not wrong, f"{path}: {wrong} not of their declared types"
            seen |= set(metrics)
    # the keys the evaluation wrote outside the old METRIC_KEYS, now declared
    assert {"eval_seed", "fidelity_extractor", "ci_method", "class_counts"} <= seen


def test_the_groups_other_modules_import_partition_the_keys_in_order():
    assert tuple(k for group in keys.GROUPS for k in GROUP_TUPLES[group]) == res.METRIC_KEYS
    assert res.METRIC_KEYS == keys.METRIC_KEYS and set(res.empty_metrics()) == set(keys.BY_NAME)
    assert res.PIXEL_MEMORISATION_KEYS == tuple(f"{k}_pixels" for k in res.MEMORISATION_KEYS)
    assert all(k.meaning and len(k.meaning) < 120 for k in keys.REGISTRY)


def test_int_keys_read_back_from_floats_as_ints():
    assert keys.typed("nfe", 200.0) == 200 and type(keys.typed("nfe", 200.0)) is int
    assert type(keys.typed("fid", 12.0)) is float and keys.typed("fid_ci", [1.0, 2.0]) == [1, 2]
    assert keys.typed("nfe", None) is None and keys.typed("nfe", 2.5) == 2.5


@pytest.mark.parametrize(
    "break_it, message",
    [
        (lambda r: (*r, r[0]), "declared twice: \\['nll_bpd'\\]"),
        (lambda r: (replace(r[0], type="number"), *r[1:]), "nll_bpd: .* type 'number'"),
        (
            lambda r: (replace(r[0], column=replace(r[0].column, within="nll_bpd_sterr")), *r[1:]),
            "within='nll_bpd_sterr' is no registered",
        ),
        (lambda r: tuple(replace(k, column=None) if k.name == "nfe" else k for k in r), "once"),
    ],
)
def test_a_registry_that_contradicts_itself_is_an_error_naming_the_entry(
    monkeypatch, break_it, message
):
    broken = break_it(keys.REGISTRY)
    monkeypatch.setattr(keys, "REGISTRY", broken)
    monkeypatch.setattr(keys, "BY_NAME", {k.name: k for k in broken})
    with pytest.raises(ValueError, match=message):
        keys._check()
