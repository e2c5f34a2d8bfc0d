"""The VAE trains on real data, its bound beats the uniform baseline, and its bound is a bound."""

from __future__ import annotations

import math

import lightning as L
import pytest
import torch

from genbench.nets.discrete import make_head
from tests.families.helpers import build, fit, gaussian_fit_bpd, split_bpd


@pytest.mark.parametrize("decoder", ["categorical", "logistic_mixture"])
def test_vae_digits_beats_uniform(decoder, tmp_path):
    L.seed_everything(0)
    module, dm = build(tmp_path, "vae", "digits", f"model.decoder={decoder}", "model.iw_samples=8")
    before = split_bpd(module, dm)
    fit(module, dm, 150)
    after = split_bpd(module, dm)
    uniform = math.log2(17)
    assert after < before and after < uniform - 0.5, (before, after)
    s = module.sample(10)
    assert s.shape == (10, 1, 8, 8) and s.dtype == torch.long
    assert s.min() >= 0 and s.max() <= 16


def test_vae_moons_beats_gaussianfit(tmp_path):
    L.seed_everything(0)
    module, dm = build(tmp_path, "vae", "moons", "dataset.num_train=4000", "model.iw_samples=16")
    fit(module, dm, 300)
    # The best axis-aligned Gaussian is a baseline any density model of moons must beat.
    gauss_bpd = gaussian_fit_bpd(dm)
    bpd = split_bpd(module, dm)
    assert bpd < gauss_bpd - 0.1, (bpd, gauss_bpd)
    s = module.sample(100)
    assert s.shape == (100, 2) and s.dtype == torch.float32


def test_iw_bound_tighter_than_elbo_and_k1_is_elbo(tmp_path):
    torch.manual_seed(0)
    module, dm = build(tmp_path, "vae", "digits", "model.iw_samples=1")
    module.eval()
    x, y = dm.split("test")
    x = x[:64]
    with torch.no_grad():
        torch.manual_seed(1)
        k1 = module.nll((x, y)).mean()
        torch.manual_seed(1)
        elbo = torch.stack([(lambda r, kl: kl - r)(*module.elbo_terms(x)) for _ in range(20)])
        elbo = elbo.mean()
        module.iw_samples = 128
        k128 = module.nll((x, y)).mean()
    assert abs(k1 - elbo) / elbo < 0.01  # both estimate -ELBO
    assert k128 < k1


@pytest.mark.parametrize("kind", ["categorical", "logistic_mixture"])
def test_discrete_heads_normalise_over_levels(kind):
    k = 17
    head = make_head(kind, k, num_mixtures=3)
    params = torch.randn(4, head.num_params, 5) * 3
    levels = torch.arange(k).view(1, k, 1).expand(4, k, 5)
    log_p = torch.stack([head.log_prob(params, levels[:, i]) for i in range(k)], dim=1)
    assert torch.allclose(log_p.exp().sum(1), torch.ones(4, 5), atol=1e-5)
    s = head.sample(params)
    assert s.shape == (4, 5) and s.min() >= 0 and s.max() < k
