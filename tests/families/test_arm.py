"""The ARM: masks leak nothing, probabilities normalise, sampling matches nll, and it learns."""

from __future__ import annotations

import itertools
import math

import lightning as L
import pytest
import torch
from hydra.utils import instantiate

from genbench.core.spec import DataSpec
from genbench.families.arm import ARM
from genbench.families.build import build_model
from genbench.nets.masked import CachedPixelCNN
from tests.conftest import compose_config
from tests.families.helpers import check_digits_beats_uniform, check_moons_density

# Small networks for the exhaustive checks (the benchmark's conf/model/arm.yaml otherwise).
TINY = {"hidden": 12, "layers": 2, "kernel": 3, "out_hidden": 12}


def _image_spec(c: int, h: int, w: int, k: int) -> DataSpec:
    return DataSpec(name="tiny", kind="image", shape=(c, h, w), num_levels=k)


def _compose(tmp_path, dataset: str, overrides: dict, data_overrides: dict | None = None):
    model = [f"model.{k}={v}" for k, v in overrides.items()]
    data = [f"dataset.{k}={v}" for k, v in (data_overrides or {}).items()]
    return compose_config(["model=arm", f"dataset={dataset}", *model, *data], tmp_path)


def _arm(tmp_path, spec: DataSpec | None = None, dataset: str = "digits", **overrides) -> ARM:
    """conf/model/arm.yaml (+ overrides) built for `spec`, or for `dataset`'s spec."""
    cfg = _compose(tmp_path, dataset, overrides)
    return build_model(cfg.model, spec or instantiate(cfg.dataset).spec)


def _arm_and_data(tmp_path, dataset: str, overrides: dict, data_overrides: dict | None = None):
    cfg = _compose(tmp_path, dataset, overrides, data_overrides)
    dm = instantiate(cfg.dataset)
    return build_model(cfg.model, dm.spec), dm


def _sharpen(module: ARM, factor: float = 4.0) -> ARM:
    """Scale the output layer so the conditionals are far from uniform (a sharper test)."""
    with torch.no_grad():
        last = module.net.out[-1] if module.spec.is_image else module.net.net[-1]
        last.weight.mul_(factor)
        last.bias.normal_(0, 1)
    return module


@pytest.mark.parametrize("shape", [(1, 5, 5), (3, 4, 4)])
def test_pixelcnn_no_leak_and_no_blind_spot(shape, tmp_path):
    """d out[c, i, j] / d x[c', i', j'] is zero iff (i', j', c') comes at or after (i, j, c)."""
    torch.manual_seed(0)
    c, h, w = shape
    module = _arm(tmp_path, _image_spec(c, h, w, 4), **{**TINY, "layers": 4})
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
def test_probabilities_over_all_images_sum_to_one(shape, k, head, tmp_path):
    torch.manual_seed(0)
    spec = _image_spec(*shape, k)
    module = _sharpen(_arm(tmp_path, spec, **TINY, head=head, num_mixtures=2)).double().eval()
    n = math.prod(shape)
    images = torch.tensor(list(itertools.product(range(k), repeat=n))).view(-1, *shape)
    with torch.no_grad():
        total = torch.exp(-module.nll((images, None))).sum().item()
    assert abs(total - 1) < 1e-4, total


@pytest.mark.parametrize("sampler", ["cached", "naive"])
def test_samples_follow_the_model_probabilities(sampler, tmp_path):
    torch.manual_seed(0)
    shape, k = (1, 2, 2), 3
    module = _sharpen(_arm(tmp_path, _image_spec(*shape, k), **TINY, sampler=sampler))
    module.eval()
    images = torch.tensor(list(itertools.product(range(k), repeat=4))).view(-1, *shape)
    with torch.inference_mode():
        probs = torch.exp(-module.nll((images, None)))
        samples = module.sample(20000, generator=torch.Generator().manual_seed(1))
    index = (samples.flatten(1) * k ** torch.arange(3, -1, -1)).sum(1)
    freq = torch.bincount(index, minlength=k**4).float() / len(samples)
    total_variation = 0.5 * (freq - probs).abs().sum().item()
    assert total_variation < 0.04, total_variation  # sampling noise alone is ~0.02
    assert module.sampling_cost() == {"nfe": 4, "sampler": f"{sampler} ancestral"}


@pytest.mark.parametrize(
    "shape,k,head", [((1, 8, 8), 17, "categorical"), ((3, 6, 6), 5, "logistic_mixture")]
)
def test_cached_network_gives_the_full_networks_conditionals(shape, k, head, tmp_path):
    """Element by element in the sampler's order, the cache's parameters equal the whole
    network's on the finished image (in float64, to rounding), with the values not yet revealed
    set to garbage: a stale or missing cache entry shows here even where it would rarely change
    a sample."""
    torch.manual_seed(0)
    c, h, w = shape
    module = _arm(tmp_path, _image_spec(c, h, w, k), head=head).double().eval()
    x = torch.rand(5, c, h, w, dtype=torch.double) * 2 - 1
    with torch.no_grad():
        full = module.net(x)  # (B, P, C, H, W)
    cache = CachedPixelCNN(module.net, 5, h, w)
    for i, j, ch in itertools.product(range(h), range(w), range(c)):
        row = x[:, :, i].clone()
        row[:, ch:, j] = 7.0  # channels >= ch of (i, j), not drawn yet
        row[:, :, j + 1 :] = 7.0  # later pixels
        params = cache.pixel(i, j, row)
        torch.testing.assert_close(params[:, :, ch], full[:, :, ch, i, j], rtol=0, atol=1e-12)
        if (j, ch) == (w - 1, c - 1):
            cache.end_row(i, x[:, :, i])


@pytest.mark.parametrize(
    "shape,head",
    [(None, "categorical"), ((3, 6, 6), "categorical"), ((3, 6, 6), "logistic_mixture")],
)
def test_cached_and_naive_samplers_draw_identical_samples(shape, head, tmp_path):
    """The same generator state gives the same samples, whatever the module's mode (dropout is
    off while sampling): digits with conf/model/arm.yaml, and a 3-channel image with a smaller
    network. Float32, as the benchmark samples; sharpened outputs make each draw depend strongly
    on its conditional. (Rounding differs between the two computations, so a draw within ~1e-7
    of a tie could differ; none does for these seeds.)"""
    torch.manual_seed(0)
    if shape is None:
        module = _arm(tmp_path, head=head)
    else:
        small = {**TINY, "layers": 3}  # > 2 layers: B-masked blocks with residuals, cached too
        module = _arm(tmp_path, _image_spec(*shape, 5), **small, head=head)
    module = _sharpen(module, factor=2.0)
    module.train()  # dropout 0.3 in conf/model/arm.yaml: the samplers must switch it off
    naive = module.sample_naive(24, generator=torch.Generator().manual_seed(1))
    cached = module.sample_cached(24, generator=torch.Generator().manual_seed(1))
    assert module.training and module.net.training  # the mode is restored
    assert torch.equal(naive, cached), (naive != cached).sum().item()
    assert naive.float().std() > 0.5  # not a degenerate image


def test_arm_sampler_is_checked(tmp_path):
    with pytest.raises(ValueError, match="model.sampler='fast'; valid: cached, naive"):
        _arm(tmp_path, sampler="fast")


def test_made_output_sees_only_earlier_coordinates(tmp_path):
    torch.manual_seed(0)
    module = _arm(tmp_path, DataSpec(name="p", kind="points", shape=(3,), num_levels=None))
    x = torch.randn(5, 3, requires_grad=True)
    out = module.net(x)  # (B, P, D)
    for d in range(3):
        (grad,) = torch.autograd.grad(out[:, :, d].sum(), x, retain_graph=True)
        assert (grad[:, d:] == 0).all() and (grad[:, :d] != 0).all()


def test_arm_digits_beats_uniform(tmp_path):
    L.seed_everything(0)
    overrides = {"hidden": 16, "layers": 3, "out_hidden": 32, "dropout": 0.0}
    module, dm = _arm_and_data(tmp_path, "digits", overrides)
    check_digits_beats_uniform(module, dm, 80)
    assert module.sampling_cost()["nfe"] == 64


def test_arm_moons_beats_gaussian_and_integrates_to_one(tmp_path):
    L.seed_everything(0)
    overrides = {"points_hidden": 64, "points_layers": 2}
    module, dm = _arm_and_data(tmp_path, "moons", overrides, {"num_train": 4000})
    check_moons_density(module, dm, 200)
    assert module.sampling_cost()["nfe"] == 2
