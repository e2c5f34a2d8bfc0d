"""Results in Python: every run under a source as one row of a pandas DataFrame, and a run's
nested results (the sampler curve, the AIS ladder) as rows of their own."""

from __future__ import annotations

from genbench.core.keys import keys_of_type
from genbench.core.results import EXTERNAL_FAMILY, FLOOR_FAMILY, METRIC_KEYS, budget_kind_value
from genbench.reporting.collect import collect

# Columns of each row, before the metrics: the run's identity and protocol.
ID_COLUMNS = ("family", "model", "dataset", "seed", "status", "budget_kind", "budget_value")
# Rows of no model genbench trained: no seed of a run, no likelihood.
NOT_TRAINED = (FLOOR_FAMILY, EXTERNAL_FAMILY)
# Metrics that are lists of points (one dict each): kept whole in their column, and the rows
# of expand(df, key).
NESTED_KEYS = keys_of_type("points")
# Metrics that are [low, high] intervals: two columns, <key>_low and <key>_high.
INTERVAL_KEYS = keys_of_type("interval")


def _metric_columns() -> list[str]:
    out = []
    for key in METRIC_KEYS:
        out += [f"{key}_low", f"{key}_high"] if key in INTERVAL_KEYS else [key]
    return out


COLUMNS = (*ID_COLUMNS, *_metric_columns(), "path")


def _flat(rec: dict) -> dict:
    kind, value = budget_kind_value(rec)
    row = {k: rec.get(k) for k in ("family", "model", "dataset", "seed", "status")}
    # an amount: a time budget's is a clock string, machine-dependent (missing here)
    row.update(budget_kind=kind, budget_value=None if kind == "time" else value)
    metrics = rec.get("metrics") or {}
    for key in METRIC_KEYS:
        v = metrics.get(key)
        if key in INTERVAL_KEYS:
            ok = isinstance(v, (list, tuple)) and len(v) == 2
            row[f"{key}_low"], row[f"{key}_high"] = v if ok else (None, None)
        else:
            row[key] = v  # lists of points (curve, log_z_ladder) stay whole: see expand()
    if rec.get("family") in NOT_TRAINED:
        # the record's seed is the evaluation's noise, not a trained run's seed
        row.update(seed=None, nll_kind=row["nll_kind"] or "none")
    row["path"] = rec.get("_path")
    return row


def load_results(source: str, completed_only: bool = False):
    """A pandas DataFrame with one row per run (and the real-data floor, external samples)
    under `source`: a folder searched for results.json and floor.json,
    "wandb-offline://folder" or "wandb://entity/project". Files that cannot be read are
    skipped, each with a warning naming it.

    Columns, in order:
    - family, model, dataset, status; seed (Int64: missing for the real-data floor and external
      samples, which no seed trained); budget_kind (flops, steps, time) and budget_value (FLOPs
      or steps; missing for a time budget);
    - likelihood: nll_bpd, nll_kind ("exact", "bound", "estimate", "none"), nll_bpd_stderr,
      nll_bpd_shared_stderr (its part shared by every example, e.g. an AIS log Z), nll_estimator
      and selection (dicts: what the test computed and what chose the checkpoint);
    - estimate diagnostics (the EBM): log_z_ladder (a list of dicts, one per AIS length;
      expand(df, "log_z_ladder")), log_z_converged, log_z_last_move, log_z_last_move_bpd,
      dequantisation_ladder (a list of dicts, one per number of draws),
      dequantisation_last_move_bpd;
    - fidelity: fid, fid_ci_low, fid_ci_high, kid_mean, kid_std, kid_ci_low, kid_ci_high,
      is_mean, is_std, precision, recall, density, coverage;
    - memorisation: nn_copy_fraction, ct_score, authenticity, and the same in pixel space
      (nn_copy_fraction_pixels, ct_score_pixels, authenticity_pixels);
    - classes: classes_covered, class_kl, extractor_test_accuracy, class_counts (a list:
      samples per predicted class);
    - spectrum (images): hf_power_ratio, hf_power_ratio_ci_low, hf_power_ratio_ci_high (the
      samples' high-frequency power share over the test images'), power_spectrum,
      power_spectrum_test (lists: mean power per frequency ring);
    - mixing (the EBM's chains): chain_energy_iat, chain_steps_traced, chain_class_changes,
      chain_distance;
    - latent paths (VAE, GAN, flow): latent_path_length, latent_path_length_ci_low,
      latent_path_length_ci_high, interpolant_confidence, endpoint_confidence;
    - sampling: samples_per_s, nfe, sampling_flops (FLOPs per sample), sampler, curve (a list
      of dicts, one per sampler setting: sampler, nfe, fid, fid_ci, fid_diff, ...;
      expand(df, "curve") gives one row each),
      sampling_batch_size, sampling_time_s;
    - run: params, train_time_s, train_steps, train_flops, eval_time_s, ema_decay_applied;
    - how the evaluation measured: eval_seed, fidelity_num_samples, fidelity_extractor
      (classifier, inception, coords), ci_method, memorisation_num_samples;
    - path: the run's folder.
    Missing values are NaN/None (a metric not computed is missing, never 0).

    >>> df = load_results("docs/benchmark/digits/runs")
    >>> df.groupby("model")["nll_bpd"].agg(["mean", "std"])
    >>> expand(df, "curve").pivot_table("fid", ["model", "nfe"], "seed")
    """
    import warnings

    import pandas as pd

    records, problems = collect(str(source))
    for p in problems:
        warnings.warn(f"load_results skipped {p}", stacklevel=2)
    rows = [_flat(r) for r in records if not completed_only or r["status"] == "completed"]
    df = pd.DataFrame(rows, columns=list(COLUMNS))
    df["seed"] = df["seed"].astype("Int64")
    return df


def expand(df, key: str):
    """One row per point of the nested metric `key` (NESTED_KEYS) of every run in `df`
    (load_results): the run's identity columns and path, then the point's own fields (for the
    curve: sampler, nfe, fid, fid_ci, ...; for the ladder: temperatures, log_z, ...)."""
    import pandas as pd

    if key not in NESTED_KEYS:
        raise ValueError(f"expand(df, {key!r}); valid: {', '.join(NESTED_KEYS)}")
    rows = []
    for _, run in df.iterrows():
        points = run[key] if isinstance(run[key], list) else []
        ident = {c: run[c] for c in (*ID_COLUMNS, "path")}
        rows += [{**ident, **point} for point in points]
    out = pd.DataFrame(rows, columns=None if rows else [*ID_COLUMNS, "path"])
    if "seed" in out:
        out["seed"] = out["seed"].astype("Int64")
    return out
