"""Quality against sampling compute: one checkpoint scored under several sampler settings."""

from __future__ import annotations

import copy

import torch
import torch_fidelity
from torch_fidelity.metric_fid import fid_features_to_statistics, fid_statistics_to_metric

from genbench.evaluation.bootstrap import bootstrap_interval, fid_of_resamples, resample_indices
from genbench.evaluation.reference import RealData
from genbench.evaluation.sample_metrics import generate
from genbench.evaluation.throughput import measure_throughput


def score_curve(
    module, real: RealData, points: list[dict], seed: int, baseline: torch.Tensor
) -> list[dict]:
    """For each {sampler, steps} of `points`: a copy of `module` configured with it
    (configure_sampler), its FID with interval on num_samples samples drawn with `seed` (the
    main evaluation's initial noise), its samples/s, and its paired difference from the
    module's own sampler, whose samples' FID features are `baseline` (N, F).

    Returns [{sampler (the family's label, e.g. "DDIM-10"), nfe, fid, fid_ci, fid_diff,
    fid_diff_ci, baseline, samples_per_s}]. fid_diff = this setting's FID minus the module's
    own sampler's on the same initial noise; its interval resamples the same sample indices
    from both sets (a paired bootstrap), so the noise the two share cancels, which unpaired
    intervals cannot show. Only FID is computed per setting (bootstrap_resamples, ci_level,
    ci_method as in the main evaluation).
    """
    s = real.settings
    ref = real.fid_statistics
    mu, sigma = (torch.as_tensor(ref[k]) for k in ("mu", "sigma"))

    def fid_of(g: torch.Tensor) -> float:
        stats = fid_features_to_statistics(g)
        metric = fid_statistics_to_metric(stats, ref, verbose=False)
        return float(metric[torch_fidelity.KEY_METRIC_FID])

    base_fid, base_label = fid_of(baseline), module.sampling_cost()["sampler"]
    idx = resample_indices(len(baseline), s.bootstrap_resamples, seed)
    base_resamples = fid_of_resamples(baseline, mu, sigma, idx) if s.bootstrap_resamples else None
    out = []
    for point in points:
        configured = copy.deepcopy(module)
        configured.configure_sampler(str(point["sampler"]), int(point["steps"]))
        samples = generate(configured, s.num_samples, s.fidelity_batch_size, seed)
        g = real.features(samples)[real.layer]
        fid = fid_of(g)
        ci = diff_ci = None
        if base_resamples is not None:
            resampled = fid_of_resamples(g, mu, sigma, idx)
            ci, diff_ci = fid_intervals(
                resampled, fid, base_resamples, base_fid, s.ci_level, s.ci_method
            )
        speed = measure_throughput(
            configured,
            s.throughput_samples,
            s.throughput_batch_size,
            s.throughput_warmup_batches,
            seed,
        )
        cost = configured.sampling_cost()
        out.append(
            {
                "sampler": cost["sampler"],
                "nfe": cost["nfe"],
                "fid": fid,
                "fid_ci": ci,
                "fid_diff": fid - base_fid,
                "fid_diff_ci": diff_ci,
                "baseline": base_label,
                "samples_per_s": speed.get("samples_per_s"),
            }
        )
    return out


def fid_intervals(
    resampled: torch.Tensor,
    fid: float,
    base_resamples: torch.Tensor,
    base_fid: float,
    level: float,
    method: str,
) -> tuple[list[float], list[float]]:
    """(fid_ci, fid_diff_ci): the interval of a setting's FID from its resamples' FIDs (B,), and
    that of its difference from the baseline's FID from the differences of the two sets' FIDs
    on the same resampled indices (B,): a paired bootstrap, in which the noise the two sets share
    (the same initial noise) cancels."""
    ci = bootstrap_interval(resampled, fid, level, method, 0.0)
    diff_ci = bootstrap_interval(resampled - base_resamples, fid - base_fid, level, method)
    return ci, diff_ci
