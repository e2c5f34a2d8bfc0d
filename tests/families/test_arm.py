"""The ARM: masks leak nothing, probabilities normalise, sampling matches nll, and it learns."""

from __future__ import annotations

import itertools
import math

import lightning as L
import pytest
import torch

from genbench.core.spec import DataSpec
from genbench.data import DigitsDataModule, Toy2DDataModule
from genbench.families.arm import ARM
from tests.families.helpers import fit, gaussian_fit_bpd, split_bpd


def _image_spec(c: int, h: int, w: int, k: int) -> DataSpec:
    return DataSpec(name="tiny", kind="image", shape=(c, h, w), num_levels=k)


def _sharpen(module: ARM, factor: float = 4.0) -> ARM:
    """Scale the output layer so the conditionals are far from uniform (a sharper test)."""
    with torch.no_grad():
        last = module.net.out[-1] if module.spec.is_image else module.net.net[-1]
        last.weight.mul_(factor)
        last.bias.normal_(0, 1)
    return module


@pytest.mark.parametrize("shape", [(1, 5, 5), (3, 4, 4)])
def test_pixelcnn_no_leak_and_no_blind_spot(shape):
    """d out[c, i, j] / d x[c', i', j'] is zero iff (i', j', c') comes at or after (i, j, c)."""
    torch.manual_seed(0)
    c, h, w = shape
    module = ARM(_image_spec(c, h, w, 4), hidden=12, layers=4, kernel=3, out_hidden=12)
    module = module.double().eval()  # no dropout: every dependency shows in the gradient
    x = torch.randn(1, c, h, w, dtype=torch.double, requires_grad=True)
    out = module.net(x)  # (1, P, C, H, W)

    def order(cc, ii, jj):  # raster order over pixels, channels within a pixel
        return (ii * w + jj) * c + cc

    for i, j, k in itertools.product(range(h), range(w), range(c)):
        (grad,) = torch.autograd.grad(out[0, :, k, i, j].sum(), x, retain_graph=True)
        for cc, ii, jj in itertools.product(range(c), range(h), range(w)):
            depends = grad[0, cc, ii, jj].abs() > 0
            earlier = order(cc, ii, jj) < order(k, i, j)
            assert depends == earlier, ((k, i, j), (cc, ii, jj), depends.item())


@pytest.mark.parametrize(
    "shape,k,head",
    [
        ((1, 2, 2), 3, "categorical"),
        ((1, 2, 2), 5, "logistic_mixture"),
        ((3, 2, 2), 2, "categorical"),
    ],
)
def test_probabilities_over_all_images_sum_to_one(shape, k, head):
    torch.manual_seed(0)
    module = (
        _sharpen(
            ARM(
                _image_spec(*shape, k),
                hidden=12,
                layers=2,
                kernel=3,
                out_hidden=12,
                head=head,
                num_mixtures=2,
            )
        )
        .double()
        .eval()
    )
    n = math.prod(shape)
    images = torch.tensor(list(itertools.product(range(k), repeat=n))).view(-1, *shape)
    with torch.no_grad():
        total = torch.exp(-module.nll((images, None))).sum().item()
    assert abs(total - 1) < 1e-4, total


def test_samples_follow_the_model_probabilities():
    torch.manual_seed(0)
    shape, k = (1, 2, 2), 3
    module = _sharpen(ARM(_image_spec(*shape, k), hidden=12, layers=2, kernel=3, out_hidden=12))
    module.eval()
    images = torch.tensor(list(itertools.product(range(k), repeat=4))).view(-1, *shape)
    with torch.inference_mode():
        probs = torch.exp(-module.nll((images, None)))
        samples = module.sample(20000, generator=torch.Generator().manual_seed(1))
    index = (samples.flatten(1) * k ** torch.arange(3, -1, -1)).sum(1)
    freq = torch.bincount(index, minlength=k**4).float() / len(samples)
    total_variation = 0.5 * (freq - probs).abs().sum().item()
    assert total_variation < 0.04, total_variation  # sampling noise alone is ~0.02
    assert module.sampling_cost()["nfe"] == 4


def test_made_output_sees_only_earlier_coordinates():
    torch.manual_seed(0)
    module = ARM(DataSpec(name="p", kind="points", shape=(3,), num_levels=None))
    x = torch.randn(5, 3, requires_grad=True)
    out = module.net(x)  # (B, P, D)
    for d in range(3):
        (grad,) = torch.autograd.grad(out[:, :, d].sum(), x, retain_graph=True)
        assert (grad[:, d:] == 0).all() and (grad[:, :d] != 0).all()


def _grid_mass(log_prob, lim: float = 5.0, n: int = 500) -> float:
    """Riemann sum of exp(log_prob) over [-lim, lim]^2."""
    g = torch.linspace(-lim, lim, n)
    xy = torch.cartesian_prod(g, g)
    with torch.no_grad():
        p = torch.exp(log_prob(xy))
    return (p.sum() * (g[1] - g[0]) ** 2).item()


def test_arm_digits_beats_uniform():
    L.seed_everything(0)
    dm = DigitsDataModule(batch_size=64)
    module = ARM(dm.spec, hidden=16, layers=3, out_hidden=32, dropout=0.0)
    fit(module, dm, 80)
    bpd = split_bpd(module, dm)
    assert bpd < math.log2(17) - 1.0, bpd
    with torch.inference_mode():
        s = module.sample(8)
    assert s.shape == (8, 1, 8, 8) and s.dtype == torch.long
    assert s.min() >= 0 and s.max() <= 16
    assert module.sampling_cost()["nfe"] == 64


def test_arm_moons_beats_gaussian_and_integrates_to_one():
    L.seed_everything(0)
    dm = Toy2DDataModule(name="moons", num_train=4000)
    module = ARM(dm.spec, points_hidden=64, points_layers=2)
    fit(module, dm, 200)
    gauss_bpd = gaussian_fit_bpd(dm)
    bpd = split_bpd(module, dm)
    assert bpd < gauss_bpd - 0.1, (bpd, gauss_bpd)
    module.eval()
    mass = _grid_mass(lambda xy: -module.nll((xy, None)))
    assert abs(mass - 1) < 0.01, mass
    with torch.inference_mode():
        s = module.sample(100)
    assert s.shape == (100, 2) and s.dtype == torch.float32
    assert module.sampling_cost()["nfe"] == 2
