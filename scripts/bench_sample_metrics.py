"""Wall time of the sample metrics (everything an evaluation does that is not sampling or NLL),
on fixed samples, with the reference cache warm: runs against this checkout's genbench or an
older one with the same samples and settings, so two versions can be timed side by side.

    python scripts/bench_sample_metrics.py --samples S.npy --dataset mnist --root ../shared/data \\
        --cache DIR [--num-samples 2000] [--repeats 3]

The first call fills the caches (reference features, and in genbench versions that have it the
reference cache of model-independent work) and is reported apart; then `repeats` timed calls.
Prints one JSON line: {"version", "first_s", "times_s": [...], "median_s", "metrics"}.
`make bench-eval` runs it for one MNIST family's samples against HEAD and a given commit.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import numpy as np
import torch

SETTINGS = dict(  # conf/eval/default.yaml's sample-metric settings, as both versions name them
    kid_subsets=100,
    kid_subset_size=1000,
    isc_splits=10,
    prc_neighborhood=3,
    bootstrap_resamples=1000,
    ci_level=0.95,
    ci_method="normal",
    density_coverage_k=5,
    copy_percentile=1.0,
    ct_cells=10,
    ct_min_generated=20,
)


def datamodule(name: str, root: str):
    """The data set as conf/dataset/<name>.yaml builds it (files under `root`)."""
    from hydra import compose, initialize_config_module
    from hydra.utils import instantiate

    from genbench.config import register

    register()
    with initialize_config_module("genbench.conf", version_base="1.3"):
        cfg = compose("train", overrides=[f"dataset={name}", f"paths.data_dir={root}"])
    return instantiate(cfg.dataset)


def scorer(dm, cache: str, seed: int):
    """A function samples -> metrics, through whichever evaluation API this genbench has."""
    try:
        from genbench.evaluation.reference import RealData
        from genbench.evaluation.sample_metrics import score_samples
    except ImportError:  # before the evaluation settings object (e.g. 281015c)
        from genbench.evaluation.fidelity import evaluate_samples

        def old(x):
            return evaluate_samples(x, dm, cache_dir=cache, seed=seed, batch_size=256, **SETTINGS)

        return "fidelity.evaluate_samples", old

    from hydra import compose, initialize_config_module

    from genbench.config import register
    from genbench.core.settings import EvalSettings

    register()
    with initialize_config_module("genbench.conf", version_base="1.3"):
        cfg = compose("train", overrides=["eval=default"])
    values = {**cfg.eval, "cache_dir": cache, "fidelity_batch_size": 256, **SETTINGS}
    settings = EvalSettings.from_mapping(values)
    return "sample_metrics.score_samples", lambda x: score_samples(x, RealData(dm, settings), seed)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--samples", required=True, help=".npy of long (N, C, H, W) levels")
    p.add_argument("--dataset", default="mnist", choices=["mnist", "digits"])
    p.add_argument("--root", default="../shared/data")
    p.add_argument("--cache", required=True)
    p.add_argument("--num-samples", type=int, default=2000)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=2)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    dm = datamodule(a.dataset, a.root)
    x = torch.from_numpy(np.load(a.samples)).long()[: a.num_samples]
    version, score = scorer(dm, a.cache, seed=0)
    start = time.perf_counter()
    metrics = score(x)
    first = time.perf_counter() - start
    times = []
    for _ in range(a.repeats):
        start = time.perf_counter()
        again = score(x)
        times.append(time.perf_counter() - start)
        assert again == metrics, "the same samples gave different metrics"
    print(
        json.dumps(
            {
                "version": version,
                "first_s": first,
                "times_s": times,
                "median_s": statistics.median(times),
                "metrics": metrics,
            },
            default=float,
        )
    )


if __name__ == "__main__":
    main()
