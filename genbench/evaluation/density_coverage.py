"""Density and coverage (Naeem et al. 2020, "Reliable fidelity and diversity metrics for
generative models"), beside torch-fidelity's precision and recall.

With real k-NN balls B(r_j, NND_k(r_j)) (radius: the distance to the k-th nearest other real):
  density  = 1/(k N) sum_i sum_j 1[g_i in B(r_j)]   (about 1 for a model matching the data; above
             1 when samples crowd into dense real regions)
  coverage = 1/M sum_j 1[some g_i in B(r_j)]          (the share of real balls holding a sample)
Membership is strict (distance < radius), as in the authors' prdc package. Computed here in row
chunks because the prdc package materialises whole distance matrices (M x M: 400 MB in float32
for a 10,000 example test split) with scikit-learn on a fixed 8 jobs.
"""

from __future__ import annotations

import torch

from genbench.evaluation.neighbours import distance_chunks, kth_neighbour_radius


def density_coverage(
    generated: torch.Tensor, real: torch.Tensor, k: int, radii: torch.Tensor | None = None
) -> dict:
    """{'density', 'coverage'} of generated (N, F) against real (M, F) features, k-NN balls
    (k: eval.density_coverage_k; `radii` (M,): the real k-NN radii, when already computed for
    these real features).

    A non-finite generated sample (a diverged sampler's) lies in no ball."""
    if len(real) <= k:
        raise ValueError(f"density/coverage with k={k} needs more than {k} real samples")
    if radii is None:
        radii = kth_neighbour_radius(real, k)  # (M,)
    inside = torch.zeros((), dtype=torch.float64, device=radii.device)
    nearest_gen = torch.full_like(radii, float("inf"))
    for d in distance_chunks(generated, real.to(radii.device)):  # (rows, M)
        inside += (d < radii).sum()
        nearest_gen = torch.minimum(nearest_gen, d.nan_to_num(float("inf")).min(0).values)
    return {
        "density": float(inside / (k * len(generated))),
        "coverage": float((nearest_gen < radii).double().mean()),
    }
