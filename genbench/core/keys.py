"""Every key an evaluation writes into a record's `metrics`, declared once (torch-fidelity's
registry.py is the model): its group, its value's type, what it means, whether it goes to the
loggers (the W&B summary) and is read back, and its column in the comparison table.

`METRIC_KEYS` and the groups (core/results.py), the table's columns (reporting/aggregate.py), the
data frame's columns (reporting/frame.py), the W&B summary (reporting/loggers.py) and its
read-back (reporting/collect.py) all derive from REGISTRY: adding a metric is its entry here
plus its computation. tests/core/test_keys.py checks that every key of the committed records is
declared; tests/reporting/test_result_keys.py that a full record survives the W&B summary and
back, and that the committed records still give the committed tables.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal, get_args

# A value's type. Nested: "interval" is [low, high]; "points" a list of dicts, one per point (a
# curve, a ladder: reporting/frame.py's expand gives one row each); "list" a list of numbers;
# "dict" one record of settings. Any value may be null: not computed, never 0.
ValueType = Literal["float", "int", "str", "bool", "dict", "list", "interval", "points"]
VALUE_TYPES: tuple[str, ...] = get_args(ValueType)

# The groups, in the order of METRIC_KEYS.
GROUPS = (
    "nll",  # the test split's likelihood and what computed it
    "estimate",  # how far an estimate still moves (the EBM's AIS ladder, dequantisation draws)
    "fidelity",  # sample quality against the test split, in the data set's feature space
    "memorisation",  # samples against the training split, in feature space
    "memorisation_pixels",  # the same in pixel space (images)
    "class",  # the classes the evaluation classifier sees in the samples
    "spectrum",  # the samples' radially averaged power spectrum against the test split's (blur)
    "mixing",  # how far the sampler's chains move (the EBM's SGLD)
    "latent",  # how smoothly samples change along latent paths (VAE, GAN, flow)
    "sampling",  # sampling speed and cost, the quality-vs-compute curve
    "run",  # the run's size, training and evaluation
    "evaluation",  # how the evaluation measured: its seed, sample counts, extractor, intervals
)


@dataclass(frozen=True)
class Column:
    """A key's column in the comparison table (reporting/table_writers.py): a cell reads
    `mean ± std (±w)`, w the mean of each run's own uncertainty (`within`)."""

    title: str
    fmt: str | None  # a format string, "sig3" (table_writers.sig3), None: a parameter count
    within: str | None = None  # each run's uncertainty: the key of a stderr or of an interval
    optional: bool = False  # shown only when some row has a value
    protocol: bool = False  # fixed by the protocol (params, FLOPs, steps, NFE): no "± 0"
    scale: float = 1.0  # displayed value = value * scale (KID's is per extractor: table_writers.py)
    key: str = ""  # the metrics key it shows: set from its entry (TABLE_COLUMNS)


@dataclass(frozen=True)
class MetricKey:
    """One key of results.json's `metrics`."""

    name: str
    type: ValueType
    meaning: str  # one line: what the value is, in which unit
    column: Column | None = None  # its column in the comparison table, if any
    logged: bool = True  # sent to every logger (the W&B summary) and read back from W&B
    group: str = ""  # one of GROUPS (set by _group)


def _group(group: str, *keys: MetricKey) -> tuple[MetricKey, ...]:
    return tuple(replace(k, group=group) for k in keys)


_MEMORISATION = (
    MetricKey(
        "nn_copy_fraction",
        "float",
        "share of samples nearer their nearest training example than eval.copy_percentile% of "
        "test examples are",
        Column("copies", "{:.3f}", optional=True),
    ),
    MetricKey(
        "ct_score",
        "float",
        "Meehan et al.'s C_T over k-means cells of the training set: < 0 memorises, > 0 under-fits",
        Column("C_T", "{:.2f}", optional=True),
    ),
    MetricKey(
        "authenticity",
        "float",
        "share of samples farther from their nearest training example than it is from its own",
        Column("authentic", "{:.3f}", optional=True),
    ),
)

REGISTRY: tuple[MetricKey, ...] = (
    *_group(
        "nll",
        MetricKey(
            "nll_bpd",
            "float",
            "test-split negative log-likelihood, bits per dimension (of the density for points)",
            Column("bits/dim", "{:.3f}", within="nll_bpd_stderr"),
        ),
        MetricKey("nll_kind", "str", "exact, bound (high in expectation), estimate or none"),
        MetricKey(
            "nll_bpd_stderr",
            "float",
            "nll_bpd's standard error over test examples, its shared part included",
        ),
        MetricKey(
            "nll_bpd_shared_stderr",
            "float",
            "the part of nll_bpd_stderr shared by every example (an AIS log Z)",
        ),
        MetricKey(
            "nll_estimator", "dict", "what the test computed: {metric, estimator, split, ...}"
        ),
        MetricKey("selection", "dict", "what chose the evaluated checkpoint: {metric, rule, ...}"),
    ),
    *_group(
        "estimate",
        MetricKey("log_z_ladder", "points", "AIS log Z and nll_bpd per schedule length (the EBM)"),
        MetricKey(
            "log_z_converged",
            "bool",
            "the AIS schedule's last doubling moved log Z less than its repeats' spread",
        ),
        MetricKey("log_z_last_move", "float", "log Z's move at the last doubling, nats, unsigned"),
        MetricKey("log_z_last_move_bpd", "float", "nll_bpd's move at that doubling, bits/dim"),
        MetricKey("dequantisation_ladder", "points", "nll_bpd per number of dequantisation draws"),
        MetricKey(
            "dequantisation_last_move_bpd",
            "float",
            "nll_bpd's move at the draws' last doubling, bits/dim",
        ),
    ),
    *_group(
        "fidelity",
        MetricKey(
            "fid",
            "float",
            "Fréchet distance of Gaussian fits to the samples' and the test split's features",
            Column("FID", "{:.1f}", within="fid_ci"),
        ),
        MetricKey(
            "fid_ci",
            "interval",
            "FID's bootstrap interval (eval.ci_level) over the generated samples",
        ),
        # the table shows KID in its extractor's unit (reporting/table_footer.py's KID_SCALES)
        MetricKey(
            "kid_mean",
            "float",
            "kernel inception distance (polynomial-kernel MMD), mean over its subsets",
            Column("KID", "sig3", within="kid_ci"),
        ),
        MetricKey("kid_std", "float", "KID's standard deviation over its subsets"),
        MetricKey(
            "kid_ci",
            "interval",
            "KID's bootstrap interval (eval.ci_level) over the generated samples",
        ),
        MetricKey(
            "is_mean",
            "float",
            "Inception score of the extractor's class posteriors, mean over its splits",
            Column("IS", "{:.2f}"),
        ),
        MetricKey("is_std", "float", "the Inception score's standard deviation over its splits"),
        MetricKey(
            "precision",
            "float",
            "k-NN manifold precision: share of samples inside the test split's k-NN balls",
            Column("precision", "{:.3f}"),
        ),
        MetricKey(
            "recall",
            "float",
            "k-NN manifold recall: share of test examples inside the samples' k-NN balls",
            Column("recall", "{:.3f}"),
        ),
        MetricKey(
            "density",
            "float",
            "Naeem et al.'s density: the test k-NN balls holding a sample, over k, mean",
            Column("density", "{:.3f}", optional=True),
        ),
        MetricKey(
            "coverage",
            "float",
            "Naeem et al.'s coverage: share of test k-NN balls holding a sample",
            Column("coverage", "{:.3f}", optional=True),
        ),
    ),
    *_group("memorisation", *_MEMORISATION),
    *_group(
        "memorisation_pixels",
        *(MetricKey(f"{k.name}_pixels", k.type, f"{k.name} in pixel space") for k in _MEMORISATION),
    ),
    *_group(
        "class",
        MetricKey("classes_covered", "int", "classes holding 1% of the samples or more"),
        MetricKey("class_kl", "float", "KL(samples' class frequencies || test split's), nats"),
        MetricKey("extractor_test_accuracy", "float", "the classifier's test-split accuracy"),
        MetricKey("class_counts", "list", "generated samples per class the classifier predicts"),
    ),
    *_group(
        "spectrum",
        MetricKey(
            "hf_power_ratio",
            "float",
            "high-band share of the samples' power spectrum over the test split's: < 1 blurrier",
            Column("HF power", "{:.2f}", within="hf_power_ratio_ci", optional=True),
        ),
        MetricKey(
            "hf_power_ratio_ci",
            "interval",
            "hf_power_ratio's bootstrap interval over the samples and the test images",
        ),
        MetricKey("power_spectrum", "list", "the samples' mean power per frequency ring"),
        MetricKey("power_spectrum_test", "list", "the test split's mean power per frequency ring"),
    ),
    *_group(
        "mixing",
        MetricKey(
            "chain_energy_iat",
            "float",
            "the energy's integrated autocorrelation time over a chain's second half, in steps",
        ),
        MetricKey("chain_steps_traced", "int", "the steps of each chain's second half"),
        MetricKey(
            "chain_class_changes",
            "float",
            "share of chains whose classifier label changes over their second half",
        ),
        MetricKey(
            "chain_distance",
            "float",
            "chains' pixel distance moved over their second half / that between test images",
        ),
    ),
    *_group(
        "latent",
        MetricKey(
            "latent_path_length",
            "float",
            "perceptual path length in the classifier's features along slerp paths, eps 1e-4",
        ),
        MetricKey(
            "latent_path_length_ci",
            "interval",
            "latent_path_length's bootstrap interval over the latent pairs",
        ),
        MetricKey(
            "interpolant_confidence",
            "float",
            "share of images between two latents the classifier labels with p >= 0.9",
        ),
        MetricKey(
            "endpoint_confidence",
            "float",
            "share of prior samples (decoded, unrounded) the classifier labels with p >= 0.9",
        ),
    ),
    *_group(
        "sampling",
        MetricKey(
            "samples_per_s",
            "float",
            "samples drawn per second after warm-up, on the run's device",
            Column("samples/s", "{:.3g}"),
        ),
        MetricKey(
            "nfe",
            "int",
            "network evaluations per sample (a gradient step counts two)",
            Column("NFE", "{:.0f}", protocol=True),
        ),
        MetricKey(
            "sampling_flops",
            "float",
            "FLOPs per sample (matrix products and convolutions, PyTorch's counter)",
            Column("FLOPs/sample", "{:.3g}", protocol=True, optional=True),
        ),
        MetricKey("sampler", "str", "the sampler's label, with its steps"),
        MetricKey("curve", "points", "per sampler setting: {sampler, nfe, fid, fid_ci, ...}"),
        MetricKey("sampling_batch_size", "int", "the batch size samples_per_s was measured at"),
        MetricKey("sampling_time_s", "float", "seconds the timed samples of samples_per_s took"),
    ),
    *_group(
        "run",
        MetricKey("params", "int", "the model's parameters", Column("params", None, protocol=True)),
        MetricKey(
            "train_time_s", "float", "training seconds, across resumes", Column("train s", "{:.0f}")
        ),
        MetricKey(
            "train_steps",
            "int",
            "optimiser steps trained (Lightning's global_step)",
            Column("steps", "{:.0f}", protocol=True),
        ),
        MetricKey(
            "train_flops",
            "float",
            "training FLOPs (forward + backward, PyTorch's counter): per step x steps",
            Column("train FLOPs", "{:.3g}", protocol=True),
        ),
        MetricKey("eval_time_s", "float", "the evaluation's wall-clock seconds"),
        MetricKey(
            "ema_decay_applied", "float", "the EMA decay of the evaluated weights' last update"
        ),
    ),
    *_group(
        "evaluation",
        MetricKey(
            "eval_seed",
            "int",
            "the seed of every draw of the evaluation, from eval.sample_seed and the run's seed",
        ),
        MetricKey("fidelity_num_samples", "int", "generated samples the fidelity metrics scored"),
        MetricKey(
            "fidelity_extractor",
            "str",
            "the sample metrics' features: classifier, inception or coords (KID's unit)",
        ),
        MetricKey(
            "ci_method",
            "str",
            "how fid_ci and kid_ci were made: the bootstrap's method and resamples",
        ),
        MetricKey("memorisation_num_samples", "int", "samples the memorisation metrics scored"),
    ),
)

# The table's columns, left to right (each key's Column is in its entry).
TABLE_ORDER = (
    "params",
    "train_flops",
    "train_steps",
    "train_time_s",
    "nll_bpd",
    "fid",
    "kid_mean",
    "is_mean",
    "precision",
    "recall",
    "density",
    "coverage",
    "hf_power_ratio",
    "nn_copy_fraction",
    "ct_score",
    "authenticity",
    "samples_per_s",
    "nfe",
    "sampling_flops",
)

BY_NAME: dict[str, MetricKey] = {k.name: k for k in REGISTRY}


def keys_in(group: str) -> tuple[str, ...]:
    """The keys of `group`, in registry order."""
    if group not in GROUPS:
        raise ValueError(f"group={group!r}; valid: {', '.join(GROUPS)}")
    return tuple(k.name for k in REGISTRY if k.group == group)


def keys_of_type(*types: str) -> tuple[str, ...]:
    """The keys whose values are of one of `types` (VALUE_TYPES), in registry order."""
    return tuple(k.name for k in REGISTRY if k.type in types)


METRIC_KEYS = tuple(k.name for k in REGISTRY)
LOGGED_KEYS = tuple(k.name for k in REGISTRY if k.logged)
TABLE_COLUMNS: tuple[Column, ...] = tuple(
    replace(BY_NAME[name].column, key=name) for name in TABLE_ORDER
)


def typed(name: str, value):
    """A value read back from a logger as its registered type: W&B keeps every number as a
    float, so an int key's 3.0 is 3 again; anything else as it is."""
    if BY_NAME[name].type == "int" and isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _check() -> None:
    """The registry contradicts itself nowhere: each name once, known groups and types, every
    `within` a registered stderr or interval, TABLE_ORDER exactly the keys with a column."""
    names = [k.name for k in REGISTRY]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise ValueError(f"metric keys declared twice: {twice}")
    for k in REGISTRY:
        if k.group not in GROUPS or k.type not in VALUE_TYPES:
            raise ValueError(f"{k.name}: group {k.group!r} / type {k.type!r} not declared")
        within = k.column and k.column.within
        if within and (within not in BY_NAME or BY_NAME[within].type not in ("float", "interval")):
            raise ValueError(f"{k.name}: within={within!r} is no registered stderr or interval")
    with_column = {k.name for k in REGISTRY if k.column is not None}
    if set(TABLE_ORDER) != with_column or len(TABLE_ORDER) != len(with_column):
        raise ValueError(f"TABLE_ORDER must list each key with a column once: {with_column}")


_check()
