"""The flow: every layer inverts and has the right log-det, the image bound is a bound on the
discrete data, 2-D densities normalise, and both variants learn."""

from __future__ import annotations

import itertools
import math

import lightning as L
import pytest
import torch
from omegaconf import OmegaConf
from torch import nn

from genbench.core.spec import DataSpec
from genbench.families.flow import Flow
from genbench.nets.flow_layers import (
    ActNorm,
    AffineCoupling,
    InvConv1x1,
    MultiScaleFlow,
    PointFlow,
    Squeeze,
    conv_coupling_net,
)
from genbench.nets.mlp import mlp
from tests.conftest import CONF_DIR
from tests.families.helpers import (
    build,
    build_for_spec,
    check_digits_beats_uniform,
    check_moons_density,
)

DEPTH = OmegaConf.load(f"{CONF_DIR}/model/flow.yaml").depth  # the coupling networks' depth


def _randomise(module: nn.Module) -> nn.Module:
    """Non-trivial parameters everywhere (zero-initialised layers would make identities)."""
    torch.manual_seed(1)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn_like(p) * 0.3)
    return module


def _check_layer(layer: nn.Module, x: torch.Tensor) -> None:
    """inverse(forward(x)) == x and log-det == log|det J| from autograd, per example."""
    layer = layer.double()
    x = x.double()
    y, logdet = layer(x)
    assert torch.allclose(layer.inverse(y), x, atol=1e-5)
    for b in range(len(x)):

        def f(v, b=b):
            return layer(v.view(1, *x.shape[1:]))[0].flatten()

        jac = torch.autograd.functional.jacobian(f, x[b].flatten())
        expected = torch.linalg.slogdet(jac)[1]
        assert torch.allclose(logdet[b], expected, atol=1e-6), (logdet[b], expected)


def _actnorm(c: int) -> ActNorm:
    layer = ActNorm(c)
    layer(torch.randn(16, c, 3, 3) * 2 + 1)  # data-dependent initialisation
    return layer.eval()


@pytest.mark.parametrize(
    "make,shape",
    [
        (lambda: _actnorm(2), (2, 2, 3, 3)),
        (lambda: _randomise(InvConv1x1(3)), (2, 3, 2, 2)),
        (lambda: Squeeze(), (2, 2, 4, 4)),
        (
            lambda: _randomise(
                AffineCoupling(conv_coupling_net(2, 8, DEPTH), 2, "checkerboard", 0)
            ),
            (2, 2, 4, 4),
        ),
        (
            lambda: _randomise(
                AffineCoupling(conv_coupling_net(2, 8, DEPTH), 2, "checkerboard", 1)
            ),
            (2, 2, 3, 3),
        ),
        (
            lambda: _randomise(AffineCoupling(conv_coupling_net(3, 8, DEPTH), 3, "channel", 0)),
            (2, 3, 2, 2),
        ),
        (
            lambda: _randomise(AffineCoupling(conv_coupling_net(4, 8, DEPTH), 4, "channel", 1)),
            (2, 4, 2, 2),
        ),
        (lambda: _randomise(AffineCoupling(mlp(2, 4, 8, 2), 2, "alternate", 1)), (3, 2)),
    ],
)
def test_layer_inverts_and_logdet_matches_autograd(make, shape):
    torch.manual_seed(0)
    _check_layer(make(), torch.randn(shape))


def test_multiscale_flow_inverts_and_logdet_matches_autograd():
    torch.manual_seed(0)
    flow = MultiScaleFlow((1, 4, 4), hidden=8, depth=1, num_scales=2, steps=2, checkerboard_steps=2)
    x = torch.randn(3, 1, 4, 4, dtype=torch.double)
    flow = _randomise(flow.double()).eval()
    zs, logdet = flow.encode(x)
    assert [z.shape[1:] for z in zs] == list(flow.out_shapes)
    assert torch.allclose(flow.inverse_from_noise(zs), x, atol=1e-5)
    for b in range(len(x)):

        def f(v):
            return torch.cat([z.flatten() for z in flow.encode(v.view(1, 1, 4, 4))[0]])

        jac = torch.autograd.functional.jacobian(f, x[b].flatten())
        assert torch.allclose(logdet[b], torch.linalg.slogdet(jac)[1], atol=1e-6)


def _image_flow(tmp_path, k: int, preprocess: str, shape=(1, 2, 2)) -> Flow:
    spec = DataSpec(name="tiny", kind="image", shape=shape, num_levels=k)
    small = ["model.hidden=8", "model.num_scales=1", "model.steps=2", "model.checkerboard_steps=2"]
    return build_for_spec(tmp_path, "flow", spec, *small, f"model.preprocess={preprocess}")


@pytest.mark.parametrize("preprocess", ["logit", "affine"])
def test_model_space_logdet_matches_autograd(preprocess, tmp_path):
    module = _image_flow(tmp_path, 5, preprocess).double()
    y = torch.rand(2, 1, 2, 2, dtype=torch.double) * 0.98 + 0.01
    z, logdet = module.to_model_space(y)
    assert torch.allclose(module.from_model_space(z), y, atol=1e-6)
    for b in range(2):
        jac = torch.autograd.functional.jacobian(
            lambda v: module.to_model_space(v.view(1, 1, 2, 2))[0].flatten(), y[b].flatten()
        )
        assert torch.allclose(logdet[b], torch.linalg.slogdet(jac)[1], atol=1e-8)


@pytest.mark.parametrize("preprocess", ["logit", "affine"])
def test_dequantized_bound_with_identity_flow_matches_closed_form(preprocess, tmp_path):
    """An identity flow (fresh: zero couplings, actnorm not yet initialised) has a known density
    on [0,1]^D, so both P(x) and the bound E_u log p - D log K are known per pixel."""
    k, a = 3, 0.05
    module = _image_flow(tmp_path, k, preprocess).eval()
    normal = torch.distributions.Normal(0.0, 1.0)

    def z_of(y):  # the model-space map, written independently
        return torch.logit(a + (1 - 2 * a) * y) if preprocess == "logit" else 2 * y - 1

    # Per pixel: P(x) = Phi(z((x+1)/K)) - Phi(z(x/K)); bound by quadrature over u.
    levels = torch.arange(k, dtype=torch.float64)
    prob = normal.cdf(z_of((levels + 1) / k)) - normal.cdf(z_of(levels / k))
    u = (torch.arange(100, dtype=torch.float64) + 0.5) / 100  # midpoint rule
    y = (levels[:, None] + u) / k
    y_ = y.clone().requires_grad_(True)
    (dz,) = torch.autograd.grad(z_of(y_).sum(), y_)
    log_py = normal.log_prob(z_of(y)) + dz.abs().log()
    bound = log_py.mean(1) - math.log(k)  # per pixel, nats
    assert (bound <= prob.log()).all()

    images = torch.tensor(list(itertools.product(range(k), repeat=4))).view(-1, 1, 2, 2)
    # The identity flow factorises over pixels, so one u shared by all pixels of an image
    # gives each pixel the same quadrature as above.
    batch = images.repeat(len(u), 1, 1, 1)  # every image once per quadrature point
    noise = u.float().repeat_interleave(len(images)).view(-1, 1, 1, 1).expand(batch.shape)
    with torch.no_grad():
        est = module.log_prob(batch, noise).double().view(len(u), -1).mean(0)
    expected = (log_py.mean(1) - math.log(k))[images.flatten(1)].sum(1)
    assert torch.allclose(est, expected, atol=1e-3), (est - expected).abs().max()
    assert torch.exp(est).sum() <= 1  # a bound on every image: the bounds sum to at most 1


def test_flow_digits_beats_uniform(tmp_path):
    L.seed_everything(0)
    small = ["model.hidden=16", "model.steps=1", "model.checkerboard_steps=1"]
    module, dm = build(tmp_path, "flow", "digits", *small)
    assert module.nll_kind == "bound"
    check_digits_beats_uniform(module, dm, 60)
    # Couplings per scale: 1 checkerboard + 1 channel, two scales.
    assert module.sampling_cost()["nfe"] == 4


def test_flow_moons_beats_gaussian_and_integrates_to_one(tmp_path):
    L.seed_everything(0)
    small = ["dataset.num_train=4000", "model.points_hidden=32", "model.points_layers=4"]
    module, dm = build(tmp_path, "flow", "moons", *small)
    assert module.nll_kind == "exact"
    check_moons_density(module, dm, 200)
    assert module.sampling_cost()["nfe"] == 4


def test_point_flow_inverts():
    torch.manual_seed(0)
    flow = _randomise(PointFlow(2, hidden=16, layers=4, net_layers=2)).double().eval()
    x = torch.randn(5, 2, dtype=torch.double)
    z, _ = flow.flow(x)
    assert torch.allclose(flow.inverse(z), x, atol=1e-5)
