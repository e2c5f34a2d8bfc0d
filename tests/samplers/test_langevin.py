"""SGLD through the one sampler loop: Gaussian moments, reflection at the faces, NFE."""

from __future__ import annotations

import torch

from genbench.samplers.base import run
from genbench.samplers.langevin import SGLD, energy_and_grad, energy_grad, reflect, write_back


def _gaussian_energy(mean: torch.Tensor, std: torch.Tensor):
    return lambda y: 0.5 * (((y - mean) / std) ** 2).sum(1)


def test_sgld_samples_gaussian_mean_and_variance():
    gen = torch.Generator().manual_seed(0)
    mean, std = torch.tensor([1.0, -0.5]), torch.tensor([0.5, 0.8])
    h = 0.005
    sampler = SGLD(h, None)
    sampler.set_timesteps(1000)
    y = run(sampler, energy_grad(_gaussian_energy(mean, std)), torch.zeros(10000, 2), gen)
    assert torch.allclose(y.mean(0), mean, atol=0.03)
    # Euler-Maruyama's stationary variance is std^2 / (1 - h / (2 std^2)): 1% above std^2 here.
    # The sample variance of 10000 draws has a relative error of 1.4%.
    assert torch.allclose(y.var(0), std**2, rtol=0.05)
    assert torch.allclose(y.var(0), std**2 / (1 - h / (2 * std**2)), rtol=0.045)


def test_reflection_keeps_the_uniform_density_on_the_box():
    # E = 0: the chain is a reflected random walk, whose invariant density is uniform. Started
    # uniform it stays uniform (clamping instead would pile mass on the faces).
    gen = torch.Generator().manual_seed(0)
    lo, hi = torch.tensor([-1.0, 0.0]), torch.tensor([1.0, 3.0])
    x = lo + torch.rand(20000, 2, generator=gen) * (hi - lo)
    sampler = SGLD(0.05, None, lo, hi)
    sampler.set_timesteps(50)
    y = run(sampler, energy_grad(lambda v: torch.zeros(len(v)) + 0 * v.sum(1)), x, gen)
    assert ((y >= lo) & (y <= hi)).all()
    # Mass within 5% of the range of each face: 5% of 20000 draws (std 0.0015).
    near_lo = (y - lo < 0.05 * (hi - lo)).float().mean(0)
    near_hi = (hi - y < 0.05 * (hi - lo)).float().mean(0)
    assert (near_lo - 0.05).abs().max() < 0.007 and (near_hi - 0.05).abs().max() < 0.007


def test_reflect_folds_any_number_of_times():
    lo, hi = torch.tensor([0.0]), torch.tensor([1.0])
    y = torch.tensor([[-0.25], [1.25], [2.5], [-3.75], [0.5]])
    assert torch.allclose(reflect(y, lo, hi), torch.tensor([[0.25], [0.75], [0.5], [0.25], [0.5]]))


def test_energy_grad_is_the_gradient_and_nfe_counts_two_per_step():
    y = torch.randn(5, 3)
    e, g = energy_and_grad(lambda v: (v**2).sum(1), y)
    assert torch.allclose(e, (y**2).sum(1)) and torch.allclose(g, 2 * y)
    sampler = SGLD(1e-3, None)
    sampler.set_timesteps(100)
    assert sampler.nfe == 200 and sampler.label == "SGLD-200"


def test_replay_write_back_keeps_the_last_of_repeated_indices_on_every_run():
    """The EBM's replay buffer: chains drawn twice in a batch are written back once, the last
    draw winning, as a one-thread loop does; a plain buffer[idx] = values on two threads kept
    another draw (and another from run to run: the EBM's training was not reproducible)."""
    gen = torch.Generator().manual_seed(0)
    idx = torch.randint(0, 1000, (4096,), generator=gen)  # about 4 draws of every slot
    values = torch.randn(4096, 64, generator=gen)
    expected = torch.zeros(1000, 64)
    for i, j in enumerate(idx.tolist()):
        expected[j] = values[i]
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        for _ in range(10):
            buffer = torch.zeros(1000, 64)
            write_back(buffer, idx, values)
            assert torch.equal(buffer, expected)
    finally:
        torch.set_num_threads(threads)
