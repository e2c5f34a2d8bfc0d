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
from dataclasses import dataclass

import numpy as np
import torch
from scipy.stats import mannwhitneyu
from sklearn.cluster import KMeans

from genbench.evaluation.neighbours import distance_chunks, nearest


def nn_copy_fraction(
    gen_to_train: torch.Tensor, test_to_train: torch.Tensor, percentile: float
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
    gen_dist: np.ndarray,
    gen_cells: np.ndarray,
    test_dist: np.ndarray,
    test_cells: np.ndarray,
    num_cells: int,
    min_generated: int,
) -> float | None:
    """C_T from each generated (N,) and test (M,) sample's distance to the nearest training
    example of its own cell (as in the authors' code) and the cell ids in [0, num_cells).

    Cells with fewer than `min_generated` generated samples (Meehan et al.'s Pi_tau) or without
    test samples (weight 0) are left out; None when no cell is left.
    """
    weights, scores = [], []
    for c in range(num_cells):
        g, t = gen_dist[gen_cells == c], test_dist[test_cells == c]
        if len(g) < min_generated or len(t) == 0:
            continue
        weights.append(len(t) / len(test_dist))
        scores.append(mann_whitney_z(g, t))
    if not weights:
        return None
    return float(np.dot(weights, scores) / np.sum(weights))


def train_neighbours(
    x: torch.Tensor, x_cells: np.ndarray, train: torch.Tensor, train_cells: np.ndarray
) -> tuple[torch.Tensor, torch.Tensor, np.ndarray]:
    """For each row of x (N, F): the distance (N,) to and index (N,) of its nearest
    training row (L, F), and the distance (N,) to the nearest training row of its own cell (inf
    when the cell holds none), from one pass over the distance matrix."""
    xc = torch.as_tensor(x_cells, device=train.device)
    tc = torch.as_tensor(train_cells, device=train.device)
    dist, idx, in_cell, start = [], [], [], 0
    for d in distance_chunks(x, train):  # (rows, L)
        rows = xc[start : start + len(d)]
        start += len(d)
        best = d.min(1)
        dist.append(best.values)
        idx.append(best.indices)
        in_cell.append(d.masked_fill(rows[:, None] != tc[None, :], float("inf")).min(1).values)
    return torch.cat(dist).cpu(), torch.cat(idx).cpu(), torch.cat(in_cell).cpu().numpy()


def train_cells(train: torch.Tensor, num_cells: int, seed: int) -> KMeans:
    """k-means (scikit-learn, seeded) with min(num_cells, L) cells on the training set (L, F)."""
    k = min(num_cells, len(train))
    return KMeans(n_clusters=k, random_state=seed, n_init="auto").fit(_numpy(train))


def authenticity(gen_dist: torch.Tensor, gen_index: torch.Tensor, train: torch.Tensor) -> float:
    """Share of generated samples that are authentic w.r.t. the training set (L, F).

    gen_dist, gen_index: (N,) distance to and index of each generated sample's nearest training
    example t*. A sample is authentic when d(g, t*) > d(t*, its nearest other training example)
    (the paper's A_j); a copy (distance 0) never is.
    """
    used, inverse = torch.unique(gen_index.cpu(), return_inverse=True)
    own = nearest(train[used], train, 2)[0][:, 1].cpu()  # column 0 is t* itself
    return float((gen_dist.cpu() > own[inverse]).double().mean())


@dataclass
class TrainReference:
    """What memorisation needs of the training and test sets alone, the same for every model
    scored against them (computed once per data set, then cached): the k-means cells of the
    training set (centres, each training example's cell), and each test example's cell and its
    distances to the nearest training example and to the nearest one of its own cell."""

    centers: torch.Tensor  # (k, F) float32
    train_cells: torch.Tensor  # (L,) long
    test_cells: torch.Tensor  # (M,) long
    test_dist: torch.Tensor  # (M,)
    test_cell_dist: torch.Tensor  # (M,)

    def to_dict(self) -> dict[str, torch.Tensor]:
        return dict(self.__dict__)


def assign_cells(x: torch.Tensor, centers: torch.Tensor) -> np.ndarray:
    """The nearest centre (k, F) of each row of x (N, F): k-means' assignment, in float32."""
    c = centers.to(x.device, torch.float32)
    return torch.cat([d.argmin(1) for d in distance_chunks(x.float(), c)]).cpu().numpy()


def train_reference(
    test: torch.Tensor, train: torch.Tensor, num_cells: int, seed: int
) -> TrainReference:
    """TrainReference of test (M, F) against train (L, F) with `num_cells` seeded k-means cells."""
    kmeans = train_cells(train, num_cells, seed)
    centers = torch.from_numpy(kmeans.cluster_centers_).float()
    test_cells = assign_cells(test, centers)
    test_d, _, test_cell_d = train_neighbours(test, test_cells, train, kmeans.labels_)
    return TrainReference(
        centers=centers,
        train_cells=torch.from_numpy(kmeans.labels_.astype(np.int64)),
        test_cells=torch.from_numpy(test_cells.astype(np.int64)),
        test_dist=test_d,
        test_cell_dist=torch.from_numpy(test_cell_d),
    )


def memorisation_metrics(
    gen: torch.Tensor,
    test: torch.Tensor,
    train: torch.Tensor,
    reference: TrainReference,
    *,
    copy_percentile: float,
    ct_min_generated: int,
) -> dict:
    """{nn_copy_fraction, ct_score, authenticity} of generated (N, F) vs training (L, F) samples,
    with held-out test samples (M, F) as the reference of what fresh samples look like.

    `reference`: train_reference(test, train, eval.ct_cells, seed), which does not depend on
    the generated samples (computed once per data set and cached); copy_percentile,
    ct_min_generated: the eval.* settings."""
    gen_cells = assign_cells(gen, reference.centers)
    train_labels = reference.train_cells.numpy()
    gen_d, gen_idx, gen_cell_d = train_neighbours(gen, gen_cells, train, train_labels)
    test_cells = reference.test_cells.numpy()
    return {
        "nn_copy_fraction": nn_copy_fraction(gen_d, reference.test_dist, copy_percentile),
        "ct_score": ct_statistic(
            gen_cell_d,
            gen_cells,
            reference.test_cell_dist.numpy(),
            test_cells,
            len(reference.centers),
            ct_min_generated,
        ),
        "authenticity": authenticity(gen_d, gen_idx, train),
    }


def _numpy(x: torch.Tensor) -> np.ndarray:
    """float32 on the CPU: k-means needs only the cells, at half the memory of float64."""
    return x.detach().cpu().float().numpy()
