"""Bootstrap intervals of FID and KID: each resample's value against torch-fidelity's own
functions or a loop over pairs, and the intervals' behaviour on Gaussian features (they cover
the population value about 95% of the time, narrow like 1/sqrt(n), and sit near 0 for
identical sets)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch
from torch_fidelity.metric_fid import fid_features_to_statistics, fid_statistics_to_metric
from torch_fidelity.metric_kid import KEY_METRIC_KID_MEAN, kernel_poly, kid_features_to_metric, mmd2

from genbench.evaluation.bootstrap import (
    bootstrap_interval,
    fid_of_resamples,
    kid_of_resamples,
    percentile_interval,
    resample_indices,
)
from genbench.evaluation.sample_metrics import fidelity_from_features, metric_options
from tests.conftest import eval_settings

LAYERS = {"fid": "f", "kid": "f", "prc": "f"}


def gaussian(n, d, shift, seed):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, d, generator=g, dtype=torch.float64) + shift


def torch_fidelity_fid(x, ref_stats):
    return fid_statistics_to_metric(fid_features_to_statistics(x), ref_stats, False)[
        "frechet_inception_distance"
    ]


@pytest.mark.parametrize("n, d", [(300, 8), (6, 10)])  # moments path (F <= N); Gram path
def test_each_resampled_fid_equals_torch_fidelity(n, d):
    x, r = gaussian(n, d, 0.3, 0) * 1.5, gaussian(400, d, 0.0, 1)
    stats = fid_features_to_statistics(r)
    idx = resample_indices(n, 20, seed=3)
    values = fid_of_resamples(x, *(torch.as_tensor(stats[k]) for k in ("mu", "sigma")), idx)
    direct = [torch_fidelity_fid(x[i], stats) for i in idx]
    # 1e-7: torch-fidelity's eigvals of the non-symmetric S_1 S_2 take square roots of round-off
    np.testing.assert_allclose(values.numpy(), direct, rtol=1e-7)


def kid_by_pairs(g, r, idx):
    """The resampled estimator as a loop over ordered pairs of resample positions."""
    k = lambda a, b: (a @ b / len(a) + 1) ** 3  # noqa: E731
    xs = [g[i] for i in idx]
    num = den = 0.0
    for a in range(len(idx)):
        for b in range(len(idx)):
            if idx[a] != idx[b]:  # two copies of one sample are its diagonal
                num += k(xs[a], xs[b])
                den += 1
    yy = np.mean([k(r[a], r[b]) for a in range(len(r)) for b in range(len(r)) if a != b])
    xy = np.mean([k(x, y) for x in xs for y in r])
    return num / den + yy - 2 * xy


def test_full_set_kid_is_torch_fidelity_unbiased_mmd_and_resamples_match_pair_loop():
    g, r = gaussian(40, 5, 0.2, 0), gaussian(40, 5, 0.0, 1)
    kw = {"kid_kernel_poly_degree": 3, "kid_kernel_poly_gamma": None, "kid_kernel_poly_coef0": 1}
    gn, rn = g.numpy(), r.numpy()
    expected = mmd2(kernel_poly(gn, gn, **kw), kernel_poly(gn, rn, **kw), kernel_poly(rn, rn, **kw))
    assert kid_of_resamples(g, r).item() == pytest.approx(expected, rel=1e-10)

    g, r = gaussian(12, 4, 0.2, 2), gaussian(9, 4, 0.0, 3)  # unequal sizes, duplicates
    idx = resample_indices(12, 4, seed=0)
    values = kid_of_resamples(g, r, idx)
    direct = [kid_by_pairs(g.numpy(), r.numpy(), i.tolist()) for i in idx]
    np.testing.assert_allclose(values.numpy(), direct, rtol=1e-10)


def dense_kid_of_resamples(g, r, idx):
    """The former computation, from whole N x N and N x M kernel matrices (B,)."""
    k = lambda a, b: (a @ b.T / a.shape[1] + 1) ** 3  # noqa: E731
    k_gg, k_gr, k_rr = k(g, g), k(g, r), k(r, r)
    n, m = len(g), len(r)
    c = torch.zeros(len(idx), n, dtype=torch.float64).scatter_add_(
        1, idx, torch.ones_like(idx, dtype=torch.float64)
    )
    xx = ((c @ k_gg) * c).sum(1) - (c**2 * k_gg.diagonal()).sum(1)
    xx = xx / (n**2 - (c**2).sum(1))
    yy = (k_rr.sum() - k_rr.diagonal().sum()) / (m * (m - 1))
    return xx + yy - 2 * c @ k_gr.sum(1) / (n * m)


def test_kid_in_blocks_of_rows_equals_the_dense_kernel_and_torch_fidelity(monkeypatch):
    """Forced into 4-row blocks (13 of them, the last partial), the resamples equal the dense
    N x N computation and the unresampled value torch-fidelity's unbiased MMD^2."""
    from genbench.evaluation import bootstrap

    g, r = gaussian(50, 6, 0.2, 0), gaussian(37, 6, 0.0, 1)
    idx = resample_indices(50, 30, seed=4)
    dense = dense_kid_of_resamples(g, r, idx)
    monkeypatch.setattr(bootstrap, "_CHUNK_ELEMENTS", 200)  # 200 // max(N, M) = 4 rows
    np.testing.assert_allclose(kid_of_resamples(g, r, idx).numpy(), dense.numpy(), rtol=1e-10)
    r = gaussian(50, 6, 0.0, 2)  # torch-fidelity's mmd2 takes equal sizes
    kw = {"kid_kernel_poly_degree": 3, "kid_kernel_poly_gamma": None, "kid_kernel_poly_coef0": 1}
    gn, rn = g.numpy(), r.numpy()
    expected = mmd2(kernel_poly(gn, gn, **kw), kernel_poly(gn, rn, **kw), kernel_poly(rn, rn, **kw))
    assert kid_of_resamples(g, r).item() == pytest.approx(expected, rel=1e-12)


KID_MEMORY = """
import resource, torch
from genbench.evaluation.bootstrap import kid_of_resamples, resample_indices
torch.set_num_threads(2)
n, f = 10_000, 2048
g = torch.Generator().manual_seed(0)
x = torch.randn(n, f, generator=g, dtype=torch.float64)  # float64 already: no copy inside
r = torch.randn(1000, f, generator=g, dtype=torch.float64)
idx = resample_indices(n, 20, seed=1)
rss_kb = int(open("/proc/self/statm").read().split()[1]) * resource.getpagesize() // 1024
kid = kid_of_resamples(x, r, idx)
# VmHWM, this process's own peak: ru_maxrss keeps the forking parent's across exec (pytest's,
# ~2 GB late in the suite, made this test fail there and pass alone).
status = open("/proc/self/status").read().split("VmHWM:")[1]
peak_kb = int(status.split()[0])
print(rss_kb / 2**20, peak_kb / 2**20, float(kid.std()))
"""


def test_kid_bootstrap_at_inception_scale_needs_no_n_by_n_kernel():
    """F = 2048, N = 10,000 generated features (a reference of 1000 keeps it cheap: memory in N
    is the question): the bootstrap's peak resident memory above what the process held before
    stays under half of the N x N float64 kernel (0.8 GB) that it once built (1.5 GB above,
    with its temporaries); the row blocks take 128 MB (0.13-0.18 GB above, measured). Measured
    in a fresh process (VmHWM), since torch's allocations are not Python's (tracemalloc)."""
    out = subprocess.run(
        [sys.executable, "-c", KID_MEMORY], capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stderr[-2000:]
    before_gb, peak_gb, kid_std = map(float, out.stdout.split())
    kernel_gb = 10_000**2 * 8 / 2**30
    print(f"KID bootstrap, N = 10,000, F = 2048: {before_gb:.2f} GB before, peak {peak_gb:.2f} GB")
    assert peak_gb - before_gb < kernel_gb / 2, (before_gb, peak_gb)
    assert kid_std > 0


def intervals(n, shift, resamples=300, d=8, seed=0):
    """(fid, fid_ci, full-set kid, kid_ci) of n shifted Gaussian samples vs a fixed reference."""
    gen, ref = gaussian(n, d, shift, seed), gaussian(2000, d, 0.0, 99)
    stats = fid_features_to_statistics(ref)
    idx = resample_indices(n, resamples, seed)
    mu, sigma = (torch.as_tensor(stats[k]) for k in ("mu", "sigma"))
    fid_ci = percentile_interval(fid_of_resamples(gen, mu, sigma, idx), 0.95)
    kid_ci = percentile_interval(kid_of_resamples(gen, ref, idx), 0.95)
    return torch_fidelity_fid(gen, stats), fid_ci, kid_of_resamples(gen, ref).item(), kid_ci


@pytest.mark.parametrize("seed", [0, 1])
def test_intervals_cover_the_estimates_and_narrow_like_one_over_sqrt_n(seed):
    small, large = intervals(500, 0.3, seed=seed), intervals(2000, 0.3, seed=seed)
    for fid, fid_ci, kid, kid_ci in (small, large):
        assert fid_ci[0] <= fid <= fid_ci[1] and kid_ci[0] <= kid <= kid_ci[1]
    for i in (1, 3):  # fid_ci, kid_ci
        ratio = (small[i][1] - small[i][0]) / (large[i][1] - large[i][0])
        assert 1.5 < ratio < 2.7, (i, ratio)  # 4x the samples: half the width (not 1, not 4)


def test_interval_keys_from_features():
    gen, ref = gaussian(300, 4, 0.3, 0).float(), gaussian(300, 4, 0.0, 1).float()

    def metrics(resamples: int) -> dict:
        s = eval_settings(
            kid_subsets=5,
            kid_subset_size=100,
            bootstrap_resamples=resamples,
            ci_level=0.95,  # the interval by hand below
            ci_method="normal",
        )
        return fidelity_from_features({"f": gen}, {"f": ref}, LAYERS, seed=2, **metric_options(s))

    m = metrics(100)
    idx = resample_indices(300, 100, 2)
    values = kid_of_resamples(gen, ref, idx)
    expected = bootstrap_interval(values, m["kid_mean"], 0.95, "normal")
    assert m["kid_ci"] == pytest.approx(expected, rel=1e-12)
    half = 1.959963984540054 * values.std().item()  # the normal interval, by hand
    assert m["kid_ci"] == pytest.approx([m["kid_mean"] - half, m["kid_mean"] + half], rel=1e-9)
    none = metrics(0)
    assert none["fid_ci"] is None and none["kid_ci"] is None and none["fid"] == m["fid"]


def test_bootstrap_fid_of_identical_sets_is_near_zero():
    n, d = 1000, 8
    x = gaussian(n, d, 0.0, 0).float()
    s = eval_settings(kid_subsets=5, bootstrap_resamples=200, ci_method="percentile")
    m = fidelity_from_features({"f": x}, {"f": x}, LAYERS, seed=0, **metric_options(s))
    assert abs(m["fid"]) < 1e-6
    # Resampling noise alone, for S = I: tr(S)/n from the means plus about (d^2 + d)/(4n) from
    # the covariances, 0.026 on average: a fraction of the FID of a 0.2 shift (8 * 0.2^2 = 0.32).
    noise = d / n + (d * d + d) / (4 * n)
    assert 0.3 * noise < m["fid_ci"][0] < noise < m["fid_ci"][1] < 2.5 * noise


def test_percentile_interval_and_seeded_resamples():
    values = torch.arange(1001, dtype=torch.float64)
    assert percentile_interval(values, 0.95) == pytest.approx([25.0, 975.0])
    with pytest.raises(ValueError, match="ci_level"):
        percentile_interval(values, 95)
    assert torch.equal(resample_indices(50, 3, 7), resample_indices(50, 3, 7))
    assert not torch.equal(resample_indices(50, 3, 7), resample_indices(50, 3, 8))


def test_interval_methods_and_errors():
    values = torch.tensor([1.0, 2.0, 3.0, 4.0, 5.0] * 20, dtype=torch.float64)
    assert bootstrap_interval(values, 3.0, 0.9, "percentile") == percentile_interval(values, 0.9)
    lo, hi = percentile_interval(values, 0.9)
    assert bootstrap_interval(values, 2.0, 0.9, "basic") == pytest.approx([4 - hi, 4 - lo])
    low, high = bootstrap_interval(values, 0.5, 0.95, "normal", lower=0.0)
    assert low == 0.0 and high == pytest.approx(0.5 + 1.959963984540054 * values.std().item())
    with pytest.raises(ValueError, match=r"ci_method='bca'; valid: \['normal'"):
        bootstrap_interval(values, 1.0, 0.95, "bca")


def test_the_chunked_moments_path_equals_the_outer_product_path(monkeypatch):
    """Large N F^2 (Inception's features) takes one resample at a time over row chunks; forced
    here on a small case, it gives the outer-product path's values."""
    from genbench.evaluation import bootstrap

    x, r = gaussian(300, 8, 0.3, 0) * 1.5, gaussian(400, 8, 0.0, 1)
    stats = fid_features_to_statistics(r)
    moments = [torch.as_tensor(stats[k]) for k in ("mu", "sigma")]
    idx = resample_indices(300, 6, seed=3)
    outer = fid_of_resamples(x, *moments, idx)
    monkeypatch.setattr(bootstrap, "_CHUNK_ELEMENTS", 100)  # 12-row chunks, one resample at a time
    chunked = fid_of_resamples(x, *moments, idx)
    np.testing.assert_allclose(chunked.numpy(), outer.numpy(), rtol=1e-10)


INCEPTION_SCALE = """
import sys, torch
from torch_fidelity.metric_fid import fid_features_to_statistics, fid_statistics_to_metric
from genbench.evaluation.bootstrap import fid_of_resamples, kid_of_resamples, resample_indices
torch.set_num_threads(2)
n, f = 10_000, 2048
g = torch.Generator().manual_seed(0)
x = torch.randn(n, f, generator=g) * 1.1 + 0.05
r = torch.randn(n, f, generator=g)
stats = fid_features_to_statistics(r)
idx = resample_indices(n, 3, seed=1)
fid = fid_of_resamples(x, torch.as_tensor(stats["mu"]), torch.as_tensor(stats["sigma"]), idx)
direct = fid_statistics_to_metric(fid_features_to_statistics(x[idx[0]]), stats, False)
kid = kid_of_resamples(x, r, resample_indices(n, 20, seed=2))
peak_gb = int(open("/proc/self/status").read().split("VmHWM:")[1].split()[0]) / 2**20
print(float(fid[0]), direct["frechet_inception_distance"], float(kid.std()), peak_gb)
"""


@pytest.mark.slow
def test_fid_and_kid_intervals_at_inception_scale_within_a_memory_bound():
    """F = 2048, N = 10,000 (Inception features of a CIFAR-10-sized evaluation): resampled FID
    equals torch-fidelity's on the same resample, KID's resamples vary, and the process's peak
    resident memory stays under 3 GB (the outer-product path alone would need 335 GB)."""
    out = subprocess.run(
        [sys.executable, "-c", INCEPTION_SCALE], capture_output=True, text=True, timeout=1200
    )
    assert out.returncode == 0, out.stderr[-2000:]
    fid, direct, kid_std, peak_gb = map(float, out.stdout.split())
    assert fid == pytest.approx(direct, rel=1e-5)
    assert kid_std > 0 and peak_gb < 3.0, (kid_std, peak_gb)


def test_the_default_fid_interval_covers_the_large_sample_fid_about_95_percent_of_the_time():
    """200 independent generated sets of 500 Gaussian features (F = 4, mean shifted by 0.5 in
    each dimension, variance 1.44) against the exact reference N(0, I): the default (normal,
    95%) bootstrap interval of each set's FID covers the population FID, ||mu||^2 +
    tr(S + I - 2 S^1/2) = 4 (0.25 + 0.04), in 88-99% of them (95% nominal; 200 draws)."""
    population = 4 * (0.5**2 + (1.2 - 1) ** 2)
    mu, sigma = torch.zeros(4, dtype=torch.float64), torch.eye(4, dtype=torch.float64)
    covered = 0
    for seed in range(200):
        x = gaussian(500, 4, 0.0, 100 + seed) * 1.2 + 0.5
        stats = fid_features_to_statistics(x)
        ref = {"mu": mu.numpy(), "sigma": sigma.numpy()}
        fid = fid_statistics_to_metric(stats, ref, False)["frechet_inception_distance"]
        values = fid_of_resamples(x, mu, sigma, resample_indices(500, 200, seed))
        low, high = bootstrap_interval(values, fid, 0.95, "normal", 0.0)
        covered += low <= population <= high
    assert 0.88 <= covered / 200 <= 0.99, covered


def _cubed(k1, k2, k3):
    """E t^3 of a variable with cumulants k1, k2, k3."""
    return k3 + 3 * k2 * k1 + k1**3


def _mean_kernel_within(shift: float, scale: float, d: int) -> float:
    """E k(x, x') for independent x, x' ~ N(shift, scale^2 I_d), k = (x.x'/d + 1)^3: x.x'/d
    is a mean of d independent products u = x_k x'_k, whose raw moments are squares of the
    normal's (shift, shift^2 + scale^2, shift^3 + 3 shift scale^2); cumulants of a mean of d
    divide by d^(order - 1)."""
    m1, m2 = shift**2, (shift**2 + scale**2) ** 2
    m3 = (shift**3 + 3 * shift * scale**2) ** 2
    k1, k2, k3 = m1, m2 - m1**2, m3 - 3 * m2 * m1 + 2 * m1**3
    return _cubed(k1 + 1, k2 / d, k3 / d**2)


def _mean_kernel_to(points: torch.Tensor, shift: float, scale: float) -> float:
    """mean over points r of E k(x, r), x ~ N(shift, scale^2 I_d): x.r/d is normal, with mean
    shift sum(r)/d and variance scale^2 |r|^2 / d^2."""
    d = points.shape[1]
    mean = shift * points.sum(1) / d + 1
    var = scale**2 * (points * points).sum(1) / d**2
    return float((mean**3 + 3 * mean * var).mean())


def test_the_default_kid_interval_covers_the_kid_given_the_reference_about_95_percent_of_the_time():
    """200 independent generated sets of 300 Gaussian features (F = 4, shift 0.3, scale 1.2)
    against one fixed reference of 300 N(0, I) features: the default (normal, 95%) interval,
    placed around torch-fidelity's KID as fidelity_from_features places it, covers the KID these
    sets estimate, E[MMD^2 | reference] in closed form, in 90-99% of them (190 of 200; 129 with
    the half-width halved). The interval is of the generated samples' noise only, so the truth
    holds the reference fixed; subsets as large as the sets (num_samples <= kid_subset_size, as
    in eval=default) make KID the full-set one."""
    d, shift, scale, n = 4, 0.3, 1.2, 300
    ref = gaussian(n, d, 0.0, 999)
    k_rr = (ref @ ref.T / d + 1) ** 3
    yy = float(k_rr.sum() - k_rr.diagonal().sum()) / (n * (n - 1))
    xx, xy = _mean_kernel_within(shift, scale, d), _mean_kernel_to(ref, shift, scale)
    truth = xx + yy - 2 * xy
    covered = 0
    for seed in range(200):
        x = gaussian(n, d, 0.0, seed) * scale + shift
        kid = kid_features_to_metric(x, ref, kid_subsets=2, kid_subset_size=n, verbose=False)
        values = kid_of_resamples(x, ref, resample_indices(n, 200, seed))
        low, high = bootstrap_interval(values, kid[KEY_METRIC_KID_MEAN], 0.95, "normal")
        covered += low <= truth <= high
    assert 0.90 <= covered / 200 <= 0.99, covered
