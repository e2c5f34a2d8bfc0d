"""GAN: the WGAN-GP penalty is the textbook one, a short run covers 8 gaussians, runs complete."""

from __future__ import annotations

from pathlib import Path

import lightning as L
import pytest
import torch

from genbench.core.results import read_results
from genbench.evaluation.modes import mode_coverage
from genbench.families.gan import LOSSES, gradient_penalty
from genbench.nets.dcgan import MLPDiscriminator
from genbench.run import run
from tests.families.helpers import build, fit


def test_gradient_penalty_matches_direct_computation():
    torch.manual_seed(0)
    critic = MLPDiscriminator(2, hidden=16, layers=3, spectral_norm=False)
    real, fake = torch.randn(6, 2), torch.randn(6, 2)
    eps = torch.rand(6, 1)
    got = gradient_penalty(critic, real, fake, eps)
    # One example at a time, with its own autograd call.
    want = 0.0
    for i in range(6):
        x = (eps[i] * real[i] + (1 - eps[i]) * fake[i]).unsqueeze(0).requires_grad_(True)
        (g,) = torch.autograd.grad(critic(x).sum(), x)
        want += (g.norm() - 1) ** 2 / 6
    assert torch.allclose(got, want, atol=1e-6)
    # A linear critic w.x has gradient w everywhere: penalty (||w|| - 1)^2.
    w = torch.tensor([3.0, 4.0])
    assert torch.allclose(gradient_penalty(lambda x: x @ w, real, fake), torch.tensor(16.0))


def test_gan_covers_eight_gaussians(tmp_path):
    L.seed_everything(0)
    module, dm = build(tmp_path, "gan", "8gaussians", "dataset.num_train=4000")
    fit(module, dm, 600)  # optimizer steps: 300 D and 300 G updates
    cov = mode_coverage(module.sample(2500))
    assert cov["modes_covered"] >= 6, cov
    assert cov["high_quality_fraction"] > 0.1, cov


@pytest.mark.parametrize("loss", LOSSES)
def test_losses_train_on_digits_and_sample_levels(loss, tmp_path):
    L.seed_everything(0)
    small = ["dataset.batch_size=32", "model.hidden=16", "model.d_steps=2"]
    sn = f"model.spectral_norm={loss == 'hinge'}"
    module, dm = build(tmp_path, "gan", "digits", *small, f"model.loss={loss}", sn)
    fit(module, dm, 9)  # 6 D updates, 3 G updates
    assert module._d_updates == 6
    s = module.sample(10)
    assert s.shape == (10, 1, 8, 8) and s.dtype == torch.long
    assert s.min() >= 0 and s.max() <= 16


@pytest.mark.parametrize("dataset", ["digits", "moons"])
def test_run_writes_results(fast_cfg, dataset):
    cfg = fast_cfg("model=gan", f"dataset={dataset}")
    run(cfg)
    out = Path(cfg.paths.output_dir)
    rec = read_results(out / "results.json")
    m = rec["metrics"]
    assert rec["status"] == "completed" and rec["family"] == "gan"
    assert m["nll_kind"] == "none" and m["nll_bpd"] is None and m["nll_bpd_stderr"] is None
    assert m["nfe"] == 1 and m["samples_per_s"] > 0
    assert rec["evaluated_checkpoint"].startswith("best_step")  # lowest val/fid
    assert (out / "samples.png").exists()
