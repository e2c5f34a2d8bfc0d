"""Bootstrap intervals of FID and KID over the generated samples.

The generated features are resampled with replacement (B seeded resamples of the same size), the
reference features stay fixed, and the features are the ones already extracted for the point
estimates, so an interval costs only linear algebra on (N, F) matrices. The intervals describe
the sampling noise of the generated set at this sample count, not the reference's.
"""

from __future__ import annotations

import torch

from genbench.core.settings import CI_METHODS

# Elements of one chunk of gathered resamples or kernel rows, float64: 16M -> 128 MB.
_CHUNK_ELEMENTS = 1 << 24


def resample_indices(n: int, resamples: int, seed: int) -> torch.Tensor:
    """(B, n) long: B resamples of n indices in [0, n), drawn with replacement from `seed`."""
    gen = torch.Generator().manual_seed(seed)
    return torch.randint(0, n, (resamples, n), generator=gen)


def percentile_interval(values: torch.Tensor, level: float) -> list[float]:
    """[low, high]: the (1 - level)/2 and (1 + level)/2 quantiles of bootstrap values (B,)."""
    if not 0 < level < 1:
        raise ValueError(f"ci_level={level}; valid: 0 < ci_level < 1")
    q = torch.tensor([(1 - level) / 2, (1 + level) / 2], dtype=values.dtype)
    low, high = torch.quantile(values, q).tolist()
    return [low, high]


def bootstrap_interval(
    values: torch.Tensor,
    estimate: float,
    level: float,
    method: str,
    lower: float | None = None,
) -> list[float]:
    """[low, high] from bootstrap values (B,) of a statistic whose estimate is `estimate`.

    normal: estimate ± z std(values), centred on the estimate; percentile: the values'
    quantiles; basic: 2 estimate - those quantiles. FID's resamples sit above the estimate
    (duplicated samples inflate the covariance term: on digits 15-20% of them fall below it),
    so the percentile interval can miss the estimate, and the basic one over-corrects near 0;
    the normal interval keeps the bootstrap's spread, which is what the comparison needs.
    `lower` clips the low end (0 for FID, which cannot be negative).
    """
    if not 0 < level < 1:
        raise ValueError(f"ci_level={level}; valid: 0 < ci_level < 1")
    if method == "percentile":
        low, high = percentile_interval(values, level)
    elif method == "basic":
        q_low, q_high = percentile_interval(values, level)
        low, high = 2 * estimate - q_high, 2 * estimate - q_low
    elif method == "normal":
        z = float(torch.special.ndtri(torch.tensor((1 + level) / 2, dtype=torch.float64)))
        half = z * float(values.double().std())
        low, high = estimate - half, estimate + half
    else:
        raise ValueError(f"ci_method={method!r}; valid: {list(CI_METHODS)}")
    return [max(low, lower) if lower is not None else low, high]


def _psd_sqrt(sigma: torch.Tensor) -> torch.Tensor:
    """Symmetric square root of a symmetric PSD matrix (F, F); negative round-off clipped."""
    evals, evecs = torch.linalg.eigh(sigma)
    return (evecs * evals.clamp_min(0).sqrt()) @ evecs.T


def fid_of_resamples(
    generated: torch.Tensor, mu_ref: torch.Tensor, sigma_ref: torch.Tensor, indices: torch.Tensor
) -> torch.Tensor:
    """FID of each resample generated[indices[b]] against fixed reference statistics.

    generated: (N, F) features; mu_ref (F,), sigma_ref (F, F); indices (B, N). Returns (B,)
    float64 on the CPU, computed on generated's device. The trace term tr sqrt(S_b S_ref) is the
    sum of sqrt(eig(R S_b R)) with R = sqrt(S_ref), a symmetric PSD matrix, so eigvalsh applies;
    it is the quantity torch-fidelity's fid_statistics_to_metric takes from eigvals(S_1 S_2)
    (dropping the imaginary parts of negative round-off). With F <= N the resamples' moments come
    from draw counts: for small N F^2, counts times per-sample outer products (one matrix
    product for all resamples); otherwise (Inception's F = 2048) one resample at a time as
    x^T diag(c) x over row chunks, so memory stays O(F^2 + chunk) (~0.3 GB at F = 2048,
    N = 10,000, where the outer products would take 335 GB); with N < F from the gathered
    samples, whose N x N Gram matrix has the same eigenvalues.
    """
    device = generated.device
    x = generated.double()
    n, f = x.shape
    mu_ref, sigma_ref = mu_ref.double().to(device), sigma_ref.double().to(device)
    root = _psd_sqrt(sigma_ref)
    idx = indices.to(device)
    if f <= n:
        counts = torch.zeros(len(idx), n, dtype=torch.float64, device=device)
        counts.scatter_add_(1, idx, torch.ones_like(idx, dtype=torch.float64))
        small = n * f * f <= 4 * _CHUNK_ELEMENTS
        outer = (x[:, :, None] * x[:, None, :]).reshape(n, f * f) if small else None  # (N, F^2)
        out = []
        for c in counts.split(max(1, _CHUNK_ELEMENTS // (f * f))):
            mu = c @ x / n  # (b, F)
            if outer is not None:
                second = (c @ outer).reshape(-1, f, f) / n
            else:
                second = torch.stack([_weighted_second_moment(x, cb) for cb in c]) / n
            sigma = (second - mu[:, :, None] * mu[:, None, :]) * (n / (n - 1))
            inner = root @ sigma @ root
            tr_covmean = torch.linalg.eigvalsh(inner).clamp_min(0).sqrt().sum(1)
            tr_sigma = sigma.diagonal(dim1=1, dim2=2).sum(1)
            out.append(_fid(mu, mu_ref, tr_sigma, sigma_ref, tr_covmean))
        return torch.cat(out).cpu()
    out = []
    for i in idx.split(max(1, _CHUNK_ELEMENTS // (n * f))):
        xb = x[i]  # (b, N, F)
        mu = xb.mean(1)
        centred = (xb - mu[:, None]) / (n - 1) ** 0.5  # S_b = centred^T centred
        a = centred @ root  # R S_b R = a^T a, same non-zero eigenvalues as a a^T
        tr_covmean = torch.linalg.eigvalsh(a @ a.transpose(1, 2)).clamp_min(0).sqrt().sum(1)
        tr_sigma = (centred**2).sum((1, 2))
        out.append(_fid(mu, mu_ref, tr_sigma, sigma_ref, tr_covmean))
    return torch.cat(out).cpu()


def _weighted_second_moment(x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    """sum_i c_i x_i x_i^T (F, F) for x (N, F), weights c (N,), over chunks of rows."""
    f = x.shape[1]
    out = torch.zeros(f, f, dtype=x.dtype, device=x.device)
    rows = max(1, _CHUNK_ELEMENTS // f)
    for xc, cc in zip(x.split(rows), c.split(rows), strict=True):
        out.addmm_((xc * cc[:, None]).T, xc)
    return out


def _fid(mu, mu_ref, tr_sigma, sigma_ref, tr_covmean) -> torch.Tensor:
    return ((mu - mu_ref) ** 2).sum(1) + tr_sigma + torch.trace(sigma_ref) - 2 * tr_covmean


def polynomial_kernel(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """KID's kernel (x.y / F + 1)^3, torch-fidelity's defaults: (N, F), (M, F) -> (N, M)."""
    return (x @ y.T).div_(x.shape[1]).add_(1).pow_(3)  # in place: one (N, M) buffer, not four


def kid_of_resamples(
    generated: torch.Tensor, reference: torch.Tensor, indices: torch.Tensor | None = None
) -> torch.Tensor:
    """Full-set unbiased MMD^2 (KID's polynomial kernel) of resamples of `generated` vs `reference`.

    generated (N, F), reference (M, F) features; indices (B, N) resamples, None for the one
    unresampled set. Returns (B,) (or (1,)) float64 on the CPU.

    The estimator, for draw counts c_i of generated sample i (all 1 without resampling):
        sum_{i != j} c_i c_j k(g_i, g_j) / sum_{i != j} c_i c_j
      + sum_{a != b} k(r_a, r_b) / (M (M - 1))
      - 2 sum_i c_i sum_a k(g_i, r_a) / (N M).
    Without resampling it is the unbiased MMD^2 on the full sets (KID's estimator with one subset
    of all samples instead of the average over random subsets). Under resampling it excludes only
    the true diagonal, k(g_i, g_i): pairs of two copies of one sample are that diagonal too, so
    duplicates do not bias the resampled values upwards by (mean k(g, g) - mean k(g, g')) / N,
    which near KID = 0 would be as large as the spread itself. The kernel matrices are never
    held whole: c^T K c is summed over blocks of rows of K, each computed once and used by all B
    resamples, so memory is O(N F + B N + chunk) (the N x N float64 kernel would take 0.8 GB at
    N = 10,000), and only its upper triangle is computed: B resamples cost about B N^2 / 2
    multiply-adds.
    """
    device = generated.device
    g, r = generated.double(), reference.double().to(device)
    n, m = len(g), len(r)
    rows = max(1, _CHUNK_ELEMENTS // max(n, m))
    k_gr_sums = torch.cat([polynomial_kernel(gc, r).sum(1) for gc in g.split(rows)])  # (N,)
    k_rr_sum = sum(polynomial_kernel(rc, r).sum() for rc in r.split(rows))
    yy = (k_rr_sum - _kernel_diagonal(r).sum()) / (m * (m - 1))
    if indices is None:
        counts = torch.ones(1, n, dtype=torch.float64, device=device)
    else:
        idx = indices.to(device)
        counts = torch.zeros(len(idx), n, dtype=torch.float64, device=device)
        counts.scatter_add_(1, idx, torch.ones_like(idx, dtype=torch.float64))
    squares = counts**2
    same = squares @ _kernel_diagonal(g)  # (B,): sum_i c_i^2 k(g_i, g_i)
    xx = (_quadratic_form(g, counts, rows) - same) / (n**2 - squares.sum(1))
    xy = counts @ k_gr_sums / (n * m)
    return (xx + yy - 2 * xy).cpu()


def _kernel_diagonal(x: torch.Tensor) -> torch.Tensor:
    """k(x_i, x_i) (N,) for x (N, F), without the kernel matrix (and without an x * x temporary,
    which at N = 10,000, F = 2048 would be as large as the features)."""
    return (torch.linalg.vector_norm(x, dim=1).square() / x.shape[1] + 1) ** 3


def _quadratic_form(x: torch.Tensor, counts: torch.Tensor, rows: int) -> torch.Tensor:
    """c_b^T K c_b (B,) for K = polynomial_kernel(x, x) (N, N), counts c (B, N), from blocks of
    `rows` rows of K's upper triangle, K[I, start:], each computed once for all B resamples: K
    is symmetric, so a block's pairs right of its diagonal square stand for their mirror images
    too (half the kernel's cost), and the diagonal square, counted twice that way, once less."""
    out = torch.zeros(len(counts), dtype=torch.float64, device=x.device)
    for start in range(0, len(x), rows):
        stop = min(start + rows, len(x))
        block = polynomial_kernel(x[start:stop], x[start:])  # (rows, N - start)
        left = counts[:, start:stop]  # (B, rows)
        upper = ((counts[:, start:] @ block.T) * left).sum(1)  # diagonal square + right of it
        square = ((left @ block[:, : stop - start]) * left).sum(1)
        out += 2 * upper - square
        del block  # before the next one is computed: one block held at a time, not two
    return out
