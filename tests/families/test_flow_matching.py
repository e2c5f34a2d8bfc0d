"""Flow matching: moments of samples on moons after a short fit, a normalised exact density on
points, the digits bound beats uniform after a few steps, the bound of one image by hand, and an
end-to-end run that writes results.json with the bound, the NFE and the sampler."""

from __future__ import annotations

import inspect
import json
import math
from pathlib import Path

import lightning as L
import pytest
import torch

from genbench.families.flow_matching import FlowMatching
from tests.families.helpers import (
    build,
    fit,
    gaussian_fit_bpd,
    grid_mass,
    recomputed_test_bpd,
    split_bpd,
)

SMALL_UNET = ["model.unet.channels=16", "model.unet.attention_resolutions=[]"]


pytestmark = pytest.mark.usefixtures("one_thread")


def test_constructor_takes_no_python_defaults():
    params = list(inspect.signature(FlowMatching.__init__).parameters.values())[1:]
    assert [p.name for p in params if p.default is not inspect.Parameter.empty] == []


def test_moons_samples_match_moments_and_density_normalises(tmp_path):
    L.seed_everything(0)
    module, dm = build(
        tmp_path,
        "flow_matching",
        "moons",
        "dataset.num_train=4000",
        "model.points_hidden=64",
        "model.nll_steps=8",
    )
    assert module.nll_kind == "exact" and module.family == "flow_matching"
    fit(module, dm, 300)
    module.eval()
    test = dm.split("test")[0]
    with torch.inference_mode():
        s = module.sample(2000, generator=torch.Generator().manual_seed(0))
    assert s.shape == (2000, 2) and s.dtype == torch.float32
    # Moons: the standard errors of these moments at n=2000 are ~0.02; noise has mean 0, std 1.
    assert torch.allclose(s.mean(0), test.mean(0), atol=0.1), (s.mean(0), test.mean(0))
    assert torch.allclose(s.std(0), test.std(0), rtol=0.1), (s.std(0), test.std(0))
    cov = lambda z: torch.cov(z.T)[0, 1]  # noqa: E731
    assert abs(cov(s) - cov(test)) < 0.05, (cov(s), cov(test))
    # The ODE density is a density: it beats the best Gaussian and integrates to about one.
    assert split_bpd(module, dm) < gaussian_fit_bpd(dm) - 0.1
    mass = grid_mass(lambda xy: -module.nll((xy, None)), lim=3.0, n=120)
    assert abs(mass - 1) < 0.05, mass


def test_digits_bound_beats_uniform_after_a_few_steps(tmp_path):
    L.seed_everything(0)
    module, dm = build(tmp_path, "flow_matching", "digits", *SMALL_UNET, "model.nll_steps=2")
    x, y = dm.split("test")
    batch = (x[:32], y[:32])
    torch.manual_seed(1)
    before = module.nats_to_bpd(module.nll(batch)).mean().item()
    # At initialisation the velocity is zero (zero-initialised output): N(0, I) on [-1, 1]^D,
    # worse than uniform over the 17 levels.
    assert before > math.log2(17), before
    fit(module, dm, 60)
    module.eval()
    torch.manual_seed(1)
    with torch.inference_mode():
        after = module.nats_to_bpd(module.nll(batch)).mean().item()
    assert after < math.log2(17) - 0.8, (before, after)
    with torch.inference_mode():
        s = module.sample(6)
    assert s.shape == (6, 1, 8, 8) and s.dtype == torch.long and 0 <= s.min() <= s.max() <= 16


def test_bits_per_dim_of_one_image_by_hand(tmp_path):
    """Dequantize with a known u, integrate [x, div] with a hand-written Heun loop and autograd's
    full Jacobian, add log N(z) and D log(2/K): the module's bits/dim, to 1e-4."""
    module, dm = build(
        tmp_path,
        "flow_matching",
        "digits",
        *SMALL_UNET,
        "model.nll_solver=heun",
        "model.nll_steps=3",
        "model.exact_max_dims=64",
        "model.nll_rho=1.0",  # the uniform grid of the hand-written loop below
    )
    torch.manual_seed(0)
    with torch.no_grad():  # a non-trivial velocity (the output layer starts at zero)
        for p in module.net.out.parameters():
            p.copy_(torch.randn_like(p) * 0.2)
    module.eval()
    x = dm.split("test")[0][:1]
    k, d = 17, 64
    torch.manual_seed(5)
    got = module.nats_to_bpd(module.nll((x, None))).item()
    torch.manual_seed(5)
    y = (2 * (x.float() + torch.rand(x.shape)) / k - 1).flatten()

    def v(flat: torch.Tensor, t: float) -> torch.Tensor:
        return module.net(flat.view(1, 1, 8, 8), torch.tensor([t * 1000.0])).flatten()

    def div(flat: torch.Tensor, t: float) -> torch.Tensor:
        return torch.autograd.functional.jacobian(lambda z: v(z, t), flat).trace()

    h, integral = -1 / 3, torch.tensor(0.0)
    for i in range(3):  # t = 1 -> 0 in three Heun steps
        t = 1 + i * h
        with torch.no_grad():
            d1 = v(y, t)
            y_pred = y + h * d1
            d2 = v(y_pred, t + h)
        integral = integral + h / 2 * (div(y, t) + div(y_pred, t + h))
        y = y + h / 2 * (d1 + d2)
    log_normal = -0.5 * (y**2).sum() - d / 2 * math.log(2 * math.pi)
    log_p_bound = log_normal + integral + d * math.log(2 / k)
    want = -log_p_bound.item() / (d * math.log(2))
    assert abs(got - want) < 1e-4, (got, want)


def test_configure_sampler_sets_the_solver_and_its_nfe(tmp_path):
    module, _ = build(tmp_path, "flow_matching", "digits", *SMALL_UNET)
    assert module.sampling_cost() == {"nfe": 24, "sampler": "Heun-24"}
    for sampler, steps, nfe in [("euler", 4, 4), ("heun", 8, 16), ("midpoint", 16, 32)]:
        module.configure_sampler(sampler, steps)
        assert module.sampling_cost()["nfe"] == nfe
        assert module.sampling_cost()["sampler"].endswith(f"-{nfe}")
    with pytest.raises(ValueError, match="rk4"):
        module.configure_sampler("rk4", 4)


def test_run_end_to_end_writes_bound_nfe_and_sampler(fast_cfg):
    from genbench.run import run

    cfg = fast_cfg(
        "model=flow_matching",
        "dataset=digits",
        "hardware.threads=1",
        "dataset.eval_batch_size=64",
        "model.sampling_steps=2",
        "model.nll_steps=2",
        *SMALL_UNET,
    )
    record = run(cfg)
    written = json.loads(Path(cfg.paths.output_dir, "results.json").read_text())
    for rec in (record, written):
        m = rec["metrics"]
        assert rec["status"] == "completed" and rec["family"] == "flow_matching"
        assert m["nll_kind"] == "bound" and m["nll_bpd"] < math.log2(17) - 0.3
        assert m["nfe"] == 4 and m["sampler"] == "Heun-4"
        assert m["fid"] is not None and m["samples_per_s"] > 0
    # The evaluated weights' bound recomputed by hand with other probes and dequantisation.
    recomputed = recomputed_test_bpd(record, cfg.paths.output_dir)
    assert abs(record["metrics"]["nll_bpd"] - recomputed) < 0.1
