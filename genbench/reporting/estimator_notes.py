"""Footer lines a table owes its reader about the likelihood estimators: what selected each
run's checkpoint against what the test computed, and what an estimate's biases measured."""

from __future__ import annotations


def selection_note(records: list[dict]) -> str:
    """How the evaluated checkpoints were chosen, read from metrics.selection and
    metrics.nll_estimator: 'by each family's test estimator on N validation images' when every
    likelihood run validated with its test estimator, else which runs did not."""
    likelihood = [r for r in records if (r["metrics"].get("selection") or {}).get("metric")]
    nll_runs = [r for r in likelihood if r["metrics"]["selection"]["metric"] == "val/nll_bpd"]
    if not likelihood:
        monitors = sorted({(r.get("best_val") or {}).get("monitor") for r in records} - {None})
        if monitors:  # records from before metrics.selection: the monitor, not its estimator
            return (
                f"the evaluated checkpoint: best on the validation split by "
                f"{'/'.join(monitors)} (its estimator not recorded)."
            )
        return "the evaluated checkpoint: the last (no selection recorded)."
    examples = sorted({r["metrics"]["selection"].get("examples") for r in nll_runs} - {None})
    differ = sorted({r["model"] for r in nll_runs if not selection_matches_test(r)})
    text = "the evaluated checkpoint: best on the validation split"
    if nll_runs:
        n = "/".join(str(e) for e in examples) or "?"
        text += f" (bits/dim by each family's own test estimator, on {n} validation images"
        text += f"; not the test's estimator for: {', '.join(differ)})" if differ else ")"
    if len(nll_runs) < len(likelihood):
        text += "; FID of fixed-noise samples against the validation split without a likelihood"
    return text + "."


def selection_matches_test(record: dict) -> bool:
    """Whether the run's checkpoint was selected by the estimator its test NLL used (apart from
    split and size); True for a run selected by no likelihood."""
    m = record["metrics"]
    selection, test = m.get("selection") or {}, m.get("nll_estimator") or {}
    if selection.get("metric") != "val/nll_bpd":
        return True
    return selection.get("estimator") == test.get("estimator")


def estimate_note(records: list[dict]) -> str | None:
    """For runs whose bits/dim is an 'estimate' with measured biases (the EBM): no direction is
    claimed, and how far the last doubling of the AIS schedule and of the dequantisation draws
    moved it, over the runs (bits/dim)."""
    runs = [r for r in records if r["metrics"].get("nll_kind") == "estimate"]
    log_z = [r["metrics"].get("log_z_last_move_bpd") for r in runs]
    draws = [r["metrics"].get("dequantisation_last_move_bpd") for r in runs]
    log_z, draws = [v for v in log_z if v is not None], [v for v in draws if v is not None]
    if not runs or not (log_z or draws):
        return None
    return (
        "estimate: the EBM's bits/dim adds AIS's log Z, low in expectation, to an importance "
        "estimate of the dequantised data term, high in expectation; with two opposite biases no "
        "direction is claimed and it is not ranked with exact values and bounds. The last "
        f"doubling of the AIS schedule moved it by {_range(log_z)} bits/dim, the last doubling "
        f"of the dequantisation draws by {_range(draws)} (per run; each bias is roughly its last "
        "move or less where it shrinks like 1/length)."
    )


def _range(values: list[float]) -> str:
    if not values:
        return "(not measured)"
    lo, hi = min(values), max(values)
    return f"{lo:+.4f}" if lo == hi else f"{lo:+.4f} to {hi:+.4f}"
