"""The power-spectrum blur measure (evaluation/spectrum.py): the radial spectrum against a DFT
written out as sums of complex exponentials with rings assigned in a Python loop, the high-band
ratio against the same by hand, and its direction on real digits (blurred: below 1, noisy: above
1, other real images: 1 inside the interval)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from genbench.evaluation.spectrum import high_band, radial_power_spectra, spectrum_metrics
from tests.conftest import datamodule


def brute_force_spectra(images: np.ndarray, num_levels: int) -> np.ndarray:
    """(N, C, H, W) levels -> (N, R): sum_{m,n} x[m,n] e^{-2 pi i (u m / H + v n / W)} for every
    (u, v), |.|^2 averaged over channels, then over the (u, v) whose distance to the nearest
    zero frequency (u or u - H, v or v - W) rounds to r."""
    n, c, h, w = images.shape
    x = images / (num_levels - 1)
    m, k = np.arange(h), np.arange(w)
    ring = {}
    for u in range(h):
        for v in range(w):
            fu = u if u < h - u else u - h  # the frequency nearest zero; at H/2 both have |f| = H/2
            fv = v if v < w - v else v - w
            ring[u, v] = int(math.floor(math.hypot(fu, fv) + 0.5))
    members = {r: sum(1 for q in ring.values() if q == r) for r in set(ring.values())}
    out = np.zeros((n, max(members) + 1))
    for (u, v), r in ring.items():
        basis = np.exp(-2j * np.pi * (u * m[:, None] / h + v * k[None, :] / w))  # (H, W)
        power = np.abs((x * basis).sum((-2, -1))) ** 2  # (N, C)
        out[:, r] += power.mean(1) / members[r]
    return out


def test_radial_spectra_equal_a_dft_written_out_on_non_square_colour_images():
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 17, (5, 3, 6, 8), generator=g)
    ours = radial_power_spectra(images, 17).numpy()
    theirs = brute_force_spectra(images.numpy().astype(np.float64), 17)
    assert ours.shape == theirs.shape == (5, 6)  # rings 0 .. round(hypot(3, 4)) = 5
    np.testing.assert_allclose(ours, theirs, rtol=1e-10, atol=1e-12)


def test_the_ratio_is_the_high_bands_share_by_hand():
    """hf_power_ratio from the brute-force spectra: the band r >= 3 of digits' 8x8 rings, shares
    of the rings >= 1 of each set's mean spectrum."""
    dm = datamodule("digits")
    gen, test = dm.split("train")[0][:200], dm.split("test")[0]
    assert high_band(8, 8) == 3 and high_band(28, 28) == 8
    m = spectrum_metrics(
        gen, test, 17, seed=0, bootstrap_resamples=0, ci_level=0.95, ci_method="normal"
    )
    sg = brute_force_spectra(gen.numpy().astype(np.float64), 17).mean(0)
    st = brute_force_spectra(test.numpy().astype(np.float64), 17).mean(0)
    by_hand = (sg[3:].sum() / sg[1:].sum()) / (st[3:].sum() / st[1:].sum())
    assert m["hf_power_ratio"] == pytest.approx(by_hand, rel=1e-9)
    np.testing.assert_allclose(m["power_spectrum"], sg, rtol=1e-9)
    np.testing.assert_allclose(m["power_spectrum_test"], st, rtol=1e-9)
    assert m["hf_power_ratio_ci"] is None


@pytest.fixture(scope="module")
def digits_sets():
    dm = datamodule("digits")
    return dm.split("train")[0], dm.split("test")[0]


def ratio(gen, test):
    return spectrum_metrics(
        gen, test, 17, seed=0, bootstrap_resamples=200, ci_level=0.95, ci_method="normal"
    )


def test_blur_lowers_the_ratio_and_noise_raises_it_beyond_the_interval(digits_sets):
    train, test = digits_sets
    x = train[:500].double()
    kernel = torch.full((1, 1, 3, 3), 1 / 9, dtype=torch.float64)
    blurred = torch.nn.functional.conv2d(x, kernel, padding=1).round().long()
    g = torch.Generator().manual_seed(1)
    noisy = (train[:500] + torch.randint(-3, 4, train[:500].shape, generator=g)).clamp(0, 16)
    b, n, same = ratio(blurred, test), ratio(noisy, test), ratio(train[:500], test)
    assert b["hf_power_ratio_ci"][1] < 1 < n["hf_power_ratio_ci"][0]
    assert b["hf_power_ratio"] < 0.7  # a 3x3 box filter removes most of the band above 2 cycles
    lo, hi = same["hf_power_ratio_ci"]
    assert lo < 1 < hi and hi - lo < 0.3  # other writers' real digits: the data's balance


# --- sampling cost in FLOPs (evaluation/throughput.py) ---------------------------------------


def hand_count(net: torch.nn.Module, *inputs) -> int:
    """FLOPs of one forward pass counted from each layer's shapes (2 per multiply-add): Linear
    2 in out per row, Conv2d 2 (C_in / groups) k_h k_w C_out per output position, ConvTranspose2d
    the same per input position (each input pixel meets the whole kernel once)."""
    total = 0

    def hook(layer, args, out):
        nonlocal total
        x = args[0]
        if isinstance(layer, torch.nn.Linear):
            total += 2 * x.shape[:-1].numel() * layer.in_features * layer.out_features
        elif isinstance(layer, torch.nn.ConvTranspose2d):
            kh, kw = layer.kernel_size
            per = layer.in_channels * layer.out_channels // layer.groups * kh * kw
            total += 2 * per * x.shape[0] * x.shape[2] * x.shape[3]
        elif isinstance(layer, torch.nn.Conv2d):
            kh, kw = layer.kernel_size
            per = layer.in_channels * layer.out_channels // layer.groups * kh * kw
            total += 2 * per * out.shape[0] * out.shape[2] * out.shape[3]

    layers = (torch.nn.Linear, torch.nn.Conv2d, torch.nn.ConvTranspose2d)
    handles = [m.register_forward_hook(hook) for m in net.modules() if isinstance(m, layers)]
    try:
        with torch.no_grad():
            net(*inputs)
    finally:
        for h in handles:
            h.remove()
    return total


def test_a_gans_sample_costs_one_generator_pass_counted_by_hand(tmp_path):
    from genbench.evaluation.throughput import sampling_flops
    from tests.families.helpers import build

    for dataset, hw in (("digits", 8), ("mnist_like", 28)):
        if dataset == "mnist_like":
            from genbench.core.spec import DataSpec
            from tests.families.helpers import build_for_spec

            spec = DataSpec(name="mnist_like", kind="image", shape=(1, hw, hw), num_levels=256)
            module = build_for_spec(tmp_path / dataset, "gan", spec)
        else:
            module, _ = build(tmp_path / dataset, "gan", dataset)
        module.eval()
        z = torch.randn(1, module.latent_dim)
        want = hand_count(module.generator, z)
        assert want > 0
        assert sampling_flops(module, seed=0)["sampling_flops"] == want


def test_diffusion_sampling_flops_grow_with_the_sampler_steps(tmp_path):
    """DDIM-k calls the denoiser k times: FLOPs per sample k times one call's, exactly."""
    from genbench.evaluation.throughput import sampling_flops
    from tests.families.helpers import build

    flops = {}
    for k in (5, 10):
        module, _ = build(tmp_path / str(k), "diffusion", "digits", f"model.sampling_steps={k}")
        module.eval()
        flops[k] = sampling_flops(module, seed=0)["sampling_flops"]
    assert flops[5] > 0 and flops[10] == 2 * flops[5]
