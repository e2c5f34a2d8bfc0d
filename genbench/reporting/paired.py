"""Paired differences of per-example test NLL between two likelihood models.

Every run with a likelihood saves its per-example test bits/dim (test_nll_bpd.npy) and their
test-split indices (test_nll_index.npy). Two models scored on the same test examples differ by
d_i = a_i - b_i per example; the mean of d_i with its standard error is far tighter than
comparing the two means, because the examples' own difficulty cancels. An error shared by all of
a run's examples (the EBM's log Z: metrics.nll_bpd_shared_stderr) does not cancel and is added
in quadrature. Per seed (the runs of model a and model b with the same seed) and across seeds
(the mean and spread of the per-seed means).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from genbench.evaluation.likelihood import PER_EXAMPLE_INDEX, PER_EXAMPLE_NLL

Z95 = 1.959963984540054


def per_example(record: dict) -> dict[int, float] | None:
    """{test index: bits/dim} of the run, or None where the run saved none (or has no path);
    runs older than the index file scored the test split in order."""
    path = record.get("_path")
    if not path or not (Path(path) / PER_EXAMPLE_NLL).is_file():
        return None
    values = np.load(Path(path) / PER_EXAMPLE_NLL)
    index_file = Path(path) / PER_EXAMPLE_INDEX
    index = np.load(index_file) if index_file.is_file() else np.arange(len(values))
    return dict(zip(index.tolist(), values.tolist(), strict=True))


def _shared_stderr(record: dict) -> float:
    return float((record.get("metrics") or {}).get("nll_bpd_shared_stderr") or 0.0)


def paired_difference(records: list[dict], model_a: str, model_b: str) -> dict:
    """{'per_seed': [{seed, n, mean, ci}], 'mean', 'std_over_seeds'}: bits/dim of a minus b.

    Raises ValueError naming what is missing (a model, common seeds, per-example files).
    """
    done = [r for r in records if r["status"] == "completed"]
    by = {m: {r["seed"]: r for r in done if r["model"] == m} for m in (model_a, model_b)}
    for m in (model_a, model_b):
        if not by[m]:
            models = sorted({r["model"] for r in done})
            raise ValueError(f"compare: no completed runs of model {m!r}; valid: {models}")
    rows = []
    for seed in sorted(set(by[model_a]) & set(by[model_b])):
        ra, rb = by[model_a][seed], by[model_b][seed]
        a, b = per_example(ra), per_example(rb)
        common = sorted(set(a) & set(b)) if a is not None and b is not None else []
        if len(common) < 2:
            continue
        d = np.array([a[i] for i in common]) - np.array([b[i] for i in common])
        shared = _shared_stderr(ra) ** 2 + _shared_stderr(rb) ** 2
        se = math.sqrt(d.var(ddof=1) / len(d) + shared)
        m = float(d.mean())
        rows.append({"seed": seed, "n": len(d), "mean": m, "ci": [m - Z95 * se, m + Z95 * se]})
    if not rows:
        raise ValueError(
            f"compare: no seed with per-example test NLLs ({PER_EXAMPLE_NLL}) for both "
            f"{model_a!r} and {model_b!r}"
        )
    means = [r["mean"] for r in rows]
    return {
        "a": model_a,
        "b": model_b,
        "per_seed": rows,
        "mean": float(np.mean(means)),
        "std_over_seeds": float(np.std(means, ddof=1)) if len(means) > 1 else None,
    }


def to_text(result: dict) -> str:
    a, b = result["a"], result["b"]
    lines = [f"paired test bits/dim, {a} minus {b} (negative: {a} is better):"]
    for r in result["per_seed"]:
        lo, hi = r["ci"]
        lines.append(
            f"  seed {r['seed']}: {r['mean']:+.4f} (95% CI {lo:+.4f} to {hi:+.4f}, n={r['n']})"
        )
    spread = result["std_over_seeds"]
    lines.append(
        f"  over {len(result['per_seed'])} seed(s): {result['mean']:+.4f}"
        + (f" ± {spread:.4f} (std of the seed means)" if spread is not None else "")
    )
    return "\n".join(lines) + "\n"
