"""Memorisation: does a model copy its training examples? Three views of nearest-neighbour
distances to the training set, in any feature space (the extractor's features, or pixels).

- nn_copy_fraction: the share of generated samples closer to the training set than 99% of
  held-out test examples are (below the 1st percentile of the test-to-train nearest-neighbour
  distances). About 0.01 for a model that samples afresh from the data distribution, near 1 for
  one that returns (slightly perturbed) training examples.
- ct_score: the C_T statistic of Meehan, Chaudhuri and Dasgupta 2020, "A non-parametric test to
  detect data-copying in generative models". Cells from k-means on the training set; in each
  cell a Mann-Whitney z-score of the generated samples' vs the test samples' distances to the
  cell's training examples; averaged with weights = the test samples' share of each cell, over
  the cells holding enough generated samples. About 0 for a fresh sampler, strongly negative
  (e.g. below -3) for copying, positive for a model that stays far from the data (underfitting).
- authenticity: the authenticity share of Alaa et al. 2022, "How faithful is your synthetic data?
  Sample-level metrics for evaluating and auditing generative models": a generated sample is
  unauthentic when it is at least as close to its nearest training example as that example's own
  nearest other training example is; the share of authentic samples (0 for copies; fresh
  samples score below 1 too, so compare with the real-data floor). The definition of the paper, per
  generated sample (the authors' released code instead scores each training example and indexes
  one array by the other set's neighbour ids, so its numbers differ).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from scipy.stats import mannwhitneyu
from sklearn.cluster import KMeans

from genbench.evaluation.neighbours import nearest

MEMORISATION_KEYS = ("nn_copy_fraction", "ct_score", "authenticity")


def nn_copy_fraction(
    gen_to_train: torch.Tensor, test_to_train: torch.Tensor, percentile: float = 1.0
) -> float:
    """Share of generated samples whose nearest-training-example distance (N,) is below the
    `percentile`-th percentile of the test examples' (M,) ones."""
    threshold = torch.quantile(test_to_train.double(), percentile / 100)
    return float((gen_to_train < threshold).double().mean())


def mann_whitney_z(gen_dists: np.ndarray, test_dists: np.ndarray) -> float:
    """Meehan et al.'s Z_U: the Mann-Whitney U of generated (m,) vs test (n,) distances (pairs
    with the generated distance larger, ties counted 1/2), z-scored under H0 with their
    continuity correction: (U - m n / 2 + 1/2) / sqrt(m n (m + n + 1) / 12). Negative when the
    generated samples sit closer to the training set than test samples do."""
    m, n = len(gen_dists), len(test_dists)
    u = mannwhitneyu(gen_dists, test_dists, method="asymptotic").statistic
    return float((u - m * n / 2 + 0.5) / math.sqrt(m * n * (m + n + 1) / 12))


def ct_statistic(
    gen: torch.Tensor,
    gen_cells: np.ndarray,
    test: torch.Tensor,
    test_cells: np.ndarray,
    train: torch.Tensor,
    train_cells: np.ndarray,
    num_cells: int,
    min_generated: int,
) -> float | None:
    """C_T from samples (N, F), (M, F), (L, F) and their cell ids in [0, num_cells).

    In each cell, distances go to the nearest training example of that cell (as in the authors'
    code). Cells with fewer than `min_generated` generated samples (Meehan et al.'s Pi_tau) or
    without test samples (weight 0) are left out; None when no cell is left.
    """
    weights, scores = [], []
    for c in range(num_cells):
        g, t, tr = gen[gen_cells == c], test[test_cells == c], train[train_cells == c]
        if len(g) < min_generated or len(t) == 0 or len(tr) == 0:
            continue
        gen_d = nearest(g, tr)[0][:, 0].cpu().numpy()
        test_d = nearest(t, tr)[0][:, 0].cpu().numpy()
        weights.append(len(t) / len(test))
        scores.append(mann_whitney_z(gen_d, test_d))
    if not weights:
        return None
    return float(np.dot(weights, scores) / np.sum(weights))


def ct_score(
    gen: torch.Tensor,
    test: torch.Tensor,
    train: torch.Tensor,
    *,
    num_cells: int = 10,
    min_generated: int = 20,
    seed: int = 0,
) -> float | None:
    """C_T of generated (N, F) vs test (M, F) samples with `num_cells` k-means cells of the
    training set (L, F) (at most L cells; scikit-learn's KMeans, seeded)."""
    k = min(num_cells, len(train))
    kmeans = KMeans(n_clusters=k, random_state=seed, n_init="auto").fit(train.double().numpy())

    def cells(x: torch.Tensor) -> np.ndarray:
        return kmeans.predict(x.double().numpy())

    return ct_statistic(gen, cells(gen), test, cells(test), train, kmeans.labels_, k, min_generated)


def authenticity(gen_dist: torch.Tensor, gen_index: torch.Tensor, train: torch.Tensor) -> float:
    """Share of generated samples that are authentic w.r.t. the training set (L, F).

    gen_dist, gen_index: (N,) distance to and index of each generated sample's nearest training
    example t*. A sample is authentic when d(g, t*) > d(t*, its nearest other training example)
    (the paper's A_j); a copy (distance 0) never is.
    """
    used, inverse = torch.unique(gen_index.cpu(), return_inverse=True)
    own = nearest(train[used], train, 2)[0][:, 1].cpu()  # column 0 is t* itself
    return float((gen_dist.cpu() > own[inverse]).double().mean())


def memorisation_metrics(
    gen: torch.Tensor,
    test: torch.Tensor,
    train: torch.Tensor,
    *,
    copy_percentile: float = 1.0,
    ct_cells: int = 10,
    ct_min_generated: int = 20,
    seed: int = 0,
) -> dict:
    """{nn_copy_fraction, ct_score, authenticity} of generated (N, F) vs training (L, F) samples,
    with held-out test samples (M, F) as the reference of what fresh samples look like."""
    gen_d, gen_idx = nearest(gen, train)
    test_d = nearest(test, train)[0][:, 0]
    return {
        "nn_copy_fraction": nn_copy_fraction(gen_d[:, 0], test_d, copy_percentile),
        "ct_score": ct_score(
            gen, test, train, num_cells=ct_cells, min_generated=ct_min_generated, seed=seed
        ),
        "authenticity": authenticity(gen_d[:, 0], gen_idx[:, 0], train),
    }
