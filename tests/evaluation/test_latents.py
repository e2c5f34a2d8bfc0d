"""Latent paths (evaluation/latents.py): slerp and the path length against their closed forms on
linear maps, the trimmed mean by hand, each family's latent decoder against what it samples or
inverts, and the metrics of briefly trained models on digits."""

from __future__ import annotations

import lightning as L
import numpy as np
import pytest
import torch

from genbench.evaluation.latents import latent_metrics, path_lengths, slerp, trimmed_mean
from genbench.evaluation.reference import RealData
from genbench.maths.distributions import unit_to_levels
from genbench.nets.discrete import CategoricalHead, DiscretizedLogisticMixtureHead
from tests.conftest import eval_settings
from tests.families.helpers import build, fit


def test_slerp_keeps_the_ends_and_moves_along_the_great_circle():
    g = torch.Generator().manual_seed(0)
    z1, z2 = torch.randn(5, 7, generator=g), torch.randn(5, 7, generator=g)
    torch.testing.assert_close(slerp(z1, z2, torch.zeros(5)), z1.double())
    torch.testing.assert_close(slerp(z1, z2, torch.ones(5)), z2.double())
    u1, u2 = z1 / z1.norm(dim=1, keepdim=True), z2 / z2.norm(dim=1, keepdim=True)
    mid = slerp(u1, u2, torch.full((5,), 0.3))
    torch.testing.assert_close(mid.norm(dim=1), torch.ones(5, dtype=torch.float64))
    omega = torch.arccos((u1 * u2).sum(1).double())  # the angle splits 0.3 : 0.7
    cos_to_u1 = (mid * u1.double()).sum(1)
    torch.testing.assert_close(cos_to_u1, torch.cos(0.3 * omega))


def test_the_path_length_of_linear_maps_is_the_squared_speed_of_the_path():
    """decode z -> A z, features x -> B x: |B A d/dt slerp(z1, z2, t)|^2, with the derivative
    of slerp written out: omega (-cos((1 - t) omega) z1 + cos(t omega) z2) / sin(omega)."""
    g = torch.Generator().manual_seed(1)
    n, latent, pixels, feats = 6, 4, 9, 3
    a = torch.randn(pixels, latent, generator=g, dtype=torch.float64)
    b = torch.randn(feats, pixels, generator=g, dtype=torch.float64)
    z1, z2 = torch.randn(n, latent, generator=g), torch.randn(n, latent, generator=g)
    t = torch.rand(n, generator=g) * 0.9
    got = path_lengths(lambda z: z.double() @ a.T, lambda x: x @ b.T, z1, z2, t)
    z1d, z2d, td = z1.double(), z2.double(), t.double()[:, None]
    omega = torch.arccos((z1d * z2d).sum(1) / (z1d.norm(dim=1) * z2d.norm(dim=1)))[:, None]
    speed = omega * (-torch.cos((1 - td) * omega) * z1d + torch.cos(td * omega) * z2d)
    speed = speed / torch.sin(omega)
    want = ((speed @ a.T) @ b.T).square().sum(1)
    torch.testing.assert_close(got, want, rtol=1e-3, atol=0)


def test_trimmed_mean_drops_the_outer_percentiles():
    x = torch.arange(1000, dtype=torch.float64)
    x[0], x[-1] = -1e9, 1e9
    value, kept = trimmed_mean(x)
    lo, hi = np.quantile(x.numpy(), [0.01, 0.99])
    by_hand = x.numpy()[(x.numpy() >= lo) & (x.numpy() <= hi)]
    assert value == pytest.approx(by_hand.mean()) and len(kept) == len(by_hand)


def test_the_heads_means_by_hand():
    g = torch.Generator().manual_seed(2)
    logits = torch.randn(3, 17, 2, 2, generator=g)
    p = torch.softmax(logits.double(), 1).numpy()
    by_hand = (p * np.arange(17)[None, :, None, None]).sum(1) / 16
    np.testing.assert_allclose(CategoricalHead(17).mean(logits).numpy(), by_hand, rtol=1e-5)
    head = DiscretizedLogisticMixtureHead(256, 4)
    params = torch.randn(3, 12, 2, 2, generator=g) * 0.5
    w = torch.softmax(params[:, :4].double(), 1).numpy()
    mu = params[:, 4:8].double().numpy()
    by_hand = np.clip(((w * mu).sum(1) + 1) / 2, 0, 1)
    np.testing.assert_allclose(head.mean(params).numpy(), by_hand, rtol=1e-5)


def test_each_latent_decoder_is_the_models_own_map(tmp_path):
    """The GAN's decoded images round to its samples from the same draws; the flow's decoded
    image maps back to the latent through the forward flow; the VAE's is its decoder's mean."""
    gan, _ = build(tmp_path / "gan", "gan", "digits")
    gan.eval()
    z = gan.latent_draw(32, torch.Generator().manual_seed(3))
    from_latent = unit_to_levels(2 * gan.decode_latent(z) - 1, 17)
    sampled = gan.sample(32, generator=torch.Generator().manual_seed(3))
    assert (from_latent == sampled).double().mean() > 0.999  # rounding at a level's edge aside

    flow, _ = build(tmp_path / "flow", "flow", "digits")
    flow.eval()
    z = flow.latent_draw(8, torch.Generator().manual_seed(4)) * 0.5
    y = flow.decode_latent(z)
    with torch.no_grad():
        zs, _ = flow.flow.encode(flow.to_model_space(y)[0])
    back = torch.cat([part.flatten(1) for part in zs], 1)
    torch.testing.assert_close(back, z, rtol=1e-3, atol=1e-3)

    vae, _ = build(tmp_path / "vae", "vae", "digits")
    vae.eval()
    z = vae.latent_draw(4, torch.Generator().manual_seed(5))
    params = vae.decoder(z).view(4, vae.head.num_params, 1, 8, 8)
    torch.testing.assert_close(vae.decode_latent(z), vae.head.mean(params))


@pytest.mark.parametrize("model", ["vae", "gan", "flow"])
def test_latent_metrics_of_a_briefly_trained_model(tmp_path, model):
    L.seed_everything(0)
    module, dm = build(tmp_path, model, "digits")
    fit(module, dm, 20)
    module.eval()
    real = RealData(dm, eval_settings(cache_dir=str(tmp_path / "cache"), bootstrap_resamples=50))
    m = latent_metrics(module, real, seed=0, n=64)
    assert m["latent_path_length"] > 0
    lo, hi = m["latent_path_length_ci"]
    assert lo < m["latent_path_length"] < hi
    assert 0 <= m["interpolant_confidence"] <= 1 and 0 <= m["endpoint_confidence"] <= 1
