"""The diffusion process matches its closed forms, its bound terms match direct computations,
DDIM(S=T, eta=1) is ancestral sampling, and the model trains on moons and digits."""

from __future__ import annotations

import math

import lightning as L
import pytest
import torch
from torch.distributions import Normal, kl_divergence

from genbench.data import DigitsDataModule, Toy2DDataModule
from genbench.families.diffusion import (
    Diffusion,
    GaussianDiffusion,
    discretized_gaussian_log_likelihood,
)
from tests.families.helpers import fit

SMALL_UNET = dict(channels=16, num_res_blocks=1, attention_resolutions=(4,), dropout=0.0)


@pytest.fixture(autouse=True)
def _one_thread():
    """These nets are tiny: one thread is faster than two, by far on a shared machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _bound_bpd(module, batch, t_samples: int | None, seed: int = 0) -> float:
    module.eval()
    torch.manual_seed(seed)
    with torch.inference_mode():
        return module.nats_to_bpd(module.bound_terms(batch, t_samples)["total"]).mean().item()


@pytest.mark.parametrize("schedule", ["linear", "cosine"])
def test_forward_process_matches_closed_form(schedule):
    torch.manual_seed(0)
    d = GaussianDiffusion(num_steps=50, schedule=schedule)
    betas = d.betas.double()
    acp = torch.tensor(
        [math.prod(1 - b for b in betas[: i + 1].tolist()) for i in range(50)], dtype=torch.float64
    )
    assert torch.allclose(d.alphas_cumprod.double(), acp, rtol=1e-5)
    x0 = torch.tensor([[-0.8, 0.1, 0.9]])
    n = 200_000
    for t in (0, 10, 49):
        tt = torch.full((n,), t)
        xt = d.q_sample(x0.expand(n, 3), tt, torch.randn(n, 3))
        mean, var = d.q_mean_variance(x0, tt[:1])
        assert torch.allclose(mean, (acp[t].sqrt() * x0).float(), atol=1e-6)
        assert torch.allclose(xt.mean(0), mean[0], atol=4 * var.sqrt().item() / n**0.5 + 1e-4)
        assert torch.allclose(xt.var(0), var[0].expand(3), rtol=0.02)
    # q(x_{t-1} | x_t, x_0) by Gaussian conditioning, in float64.
    xt, x0 = torch.tensor([[0.3, -1.2, 2.0]], dtype=torch.float64), x0.double()
    for t in (1, 25, 49):
        a_prev, beta = acp[t - 1], betas[t]
        var = 1 / (1 / (1 - a_prev) + (1 - beta) / beta)
        mean = var * (a_prev.sqrt() * x0 / (1 - a_prev) + (1 - beta).sqrt() * xt / beta)
        got_mean, got_logvar = d.q_posterior(x0.float(), xt.float(), torch.tensor([t]))
        assert torch.allclose(got_mean.double(), mean, atol=1e-5)
        assert torch.allclose(got_logvar.double().exp(), var.expand(1, 3), rtol=1e-4)


def test_bound_terms_match_torch_distributions():
    torch.manual_seed(0)
    d = GaussianDiffusion(num_steps=20, schedule="linear", clip_denoised=True)
    lin = torch.nn.Linear(4, 4)

    def model(x, t):
        return lin(x) * (1 + t.float()[:, None] / 20)

    k = 5
    x_data = torch.randint(0, k, (3, 4))
    x0 = x_data.float() / (k - 1) * 2 - 1
    acp = d.alphas_cumprod
    for t in (0, 1, 7, 19):
        tt = torch.full((3,), t)
        torch.manual_seed(t)
        got = d.vb_term(model, x0, tt, k, x_data)
        torch.manual_seed(t)
        xt = acp[t].sqrt() * x0 + (1 - acp[t]).sqrt() * torch.randn_like(x0)
        x0_hat = ((xt - (1 - acp[t]).sqrt() * model(xt, tt)) / acp[t].sqrt()).clamp(-1, 1)
        a_prev = acp[t - 1] if t > 0 else torch.tensor(1.0)
        beta = d.betas[t]

        def posterior_mean(x_start, a_prev=a_prev, beta=beta, xt=xt, t=t):
            return (
                a_prev.sqrt() * beta / (1 - acp[t]) * x_start
                + (1 - beta).sqrt() * (1 - a_prev) / (1 - acp[t]) * xt
            )

        if t > 0:
            var = beta * (1 - a_prev) / (1 - acp[t])
            q = Normal(posterior_mean(x0), var.sqrt())
            p = Normal(posterior_mean(x0_hat), var.sqrt())
            want = kl_divergence(q, p).sum(1)
        else:  # decoder: variance beta_tilde at step 1, mass of x's bin (tails at the ends)
            std = (d.betas[1] * (1 - acp[0]) / (1 - acp[1])).sqrt()
            p = Normal(x0_hat, std)
            h = 1 / (k - 1)
            upper = torch.where(x_data == k - 1, torch.ones(()), p.cdf(x0 + h))
            lower = torch.where(x_data == 0, torch.zeros(()), p.cdf(x0 - h))
            want = -torch.log(upper - lower).sum(1)
        assert torch.allclose(got, want, rtol=1e-4, atol=1e-5), (t, got, want)
    prior = d.prior_kl(x0)
    q_t = Normal(acp[-1].sqrt() * x0, (1 - acp[-1]).sqrt())
    want = kl_divergence(q_t, Normal(torch.zeros(()), torch.ones(()))).sum(1)
    assert torch.allclose(prior, want, rtol=1e-4, atol=1e-7)


@pytest.mark.parametrize("k", [2, 17, 256])
def test_decoder_probabilities_sum_to_one(k):
    torch.manual_seed(0)
    mean = torch.cat([torch.randn(50) * 2, torch.tensor([-30.0, 30.0, 0.999, -1.0])])
    log_scale = torch.cat([torch.randn(50) * 3 - 3, torch.tensor([0.0, 0.0, -9.0, -9.0])])
    levels = torch.arange(k).view(k, 1).expand(k, len(mean))
    log_p = discretized_gaussian_log_likelihood(levels, mean, log_scale, k)
    assert torch.isfinite(log_p).all()
    assert torch.allclose(log_p.double().exp().sum(0), torch.ones(len(mean), dtype=torch.float64))
    if k == 2:
        return
    # An inner level's mass against the Normal cdf, where the latter is accurate.
    p = Normal(mean[:50].double(), log_scale[:50].double().exp())
    c = -1 + 2 * (k // 2) / (k - 1)
    direct = p.cdf(torch.tensor(c + 1 / (k - 1))) - p.cdf(torch.tensor(c - 1 / (k - 1)))
    ok = direct > 1e-6
    assert torch.allclose(log_p[k // 2, :50].double().exp()[ok], direct[ok], rtol=1e-3)


def test_ddim_eta1_full_steps_is_ancestral_sampling():
    # Gaussian data N(mu, s^2): the optimal eps predictor is known in closed form.
    d = GaussianDiffusion(num_steps=100, schedule="linear", clip_denoised=False)
    mu, s = torch.tensor([0.5, -1.0]), torch.tensor([0.3, 1.2])

    def eps_star(xt, t):
        a, sig = d.sqrt_acp[t][:, None], d.sqrt_one_minus_acp[t][:, None]
        return sig * (xt - a * mu) / (a**2 * s**2 + sig**2)

    n = 10_000
    g = torch.Generator().manual_seed(0)
    ddpm = d.ddpm_sample(eps_star, (n, 2), generator=g)
    g = torch.Generator().manual_seed(1)
    ddim = d.ddim_sample(eps_star, (n, 2), 100, eta=1.0, generator=g)
    qs = torch.tensor([0.05, 0.25, 0.5, 0.75, 0.95])
    assert torch.allclose(ddpm.mean(0), ddim.mean(0), atol=0.04), (ddpm.mean(0), ddim.mean(0))
    assert torch.allclose(ddpm.std(0), ddim.std(0), rtol=0.04), (ddpm.std(0), ddim.std(0))
    assert torch.allclose(ddpm.quantile(qs, dim=0), ddim.quantile(qs, dim=0), atol=0.06)
    # Same noise, same path: the two samplers are the same Markov chain.
    same = [
        f(eps_star, (8, 2), generator=torch.Generator().manual_seed(2))
        for f in (d.ddpm_sample, lambda *a, **k: d.ddim_sample(*a[:2], 100, 1.0, **k))
    ]
    assert torch.allclose(same[0], same[1], atol=1e-4)
    # Deterministic DDIM over all steps also lands on the data distribution.
    det = d.ddim_sample(eps_star, (n, 2), 100, eta=0.0, generator=torch.Generator().manual_seed(3))
    assert torch.allclose(det.mean(0), mu, atol=0.05) and torch.allclose(det.std(0), s, rtol=0.08)
    assert d.ddim_steps(20)[0] == 0 and d.ddim_steps(20)[-1] == 99 and len(d.ddim_steps(20)) == 20


def test_stratified_estimate_is_unbiased_for_the_full_sum():
    torch.manual_seed(0)
    dm = Toy2DDataModule(name="moons", num_train=500)
    module = Diffusion(dm.spec, num_steps=40, points_hidden=32).eval()
    x = dm.split("test")[0][:256]
    with torch.inference_mode():
        full = torch.stack([module.bound_terms((x, None))["total"].mean() for _ in range(20)])
        est = torch.stack([module.bound_terms((x, None), 4)["total"].mean() for _ in range(80)])
    se = (full.var() / 20 + est.var() / 80).sqrt()
    assert abs(full.mean() - est.mean()) < 4 * se, (full.mean(), est.mean(), se)


def test_bound_decreases_on_moons():
    L.seed_everything(0)
    dm = Toy2DDataModule(name="moons", num_train=4000)
    module = Diffusion(dm.spec, num_steps=100, lr=2e-3, points_hidden=64)
    batch = (dm.split("test")[0][:1000], None)
    before = _bound_bpd(module, batch, None)
    fit(module, dm, 300)
    after = _bound_bpd(module, batch, None)
    assert after < before - 1.0, (before, after)
    s = module.sample(100)
    assert s.shape == (100, 2) and s.dtype == torch.float32 and torch.isfinite(s).all()


def test_digits_trains_beats_uniform_and_state_round_trips():
    L.seed_everything(0)
    dm = DigitsDataModule(batch_size=64)
    kw = dict(num_steps=200, lr=2e-3, nll_t_samples=20, **SMALL_UNET)
    module = Diffusion(dm.spec, **kw)
    x, y = dm.split("test")
    before = _bound_bpd(module, (x, y), 20)
    fit(module, dm, 150)
    after = _bound_bpd(module, (x, y), 20)
    assert after < before and after < math.log2(17) - 0.3, (before, after)
    state = module.state_dict()
    fresh = Diffusion(dm.spec, **kw)
    fresh.load_state_dict(state)
    assert _bound_bpd(fresh, (x[:64], y[:64]), 5, seed=3) == _bound_bpd(
        module, (x[:64], y[:64]), 5, seed=3
    )
    s = module.sample(6)
    assert s.shape == (6, 1, 8, 8) and s.dtype == torch.long and 0 <= s.min() <= s.max() <= 16
    assert module.sampling_cost()["nfe"] == 200
    ddim = Diffusion(dm.spec, **kw, sampler="ddim", sampling_steps=10)
    ddim.load_state_dict(state)
    assert ddim.sampling_cost()["nfe"] == 10 and ddim.sample(3).shape == (3, 1, 8, 8)


@pytest.mark.parametrize(
    "model", ["diffusion", pytest.param("diffusion_ddpm", marks=pytest.mark.slow)]
)
def test_run_end_to_end_evaluates_the_best_checkpoint(fast_cfg, model):
    from genbench.run import run

    over = ["model.num_steps=50", "model.nll_t_samples=5", "model.val_t_samples=2"]
    cfg = fast_cfg(f"model={model}", "dataset=digits", "hardware.threads=1", *over)
    record = run(cfg)
    m = record["metrics"]
    assert record["status"] == "completed" and record["family"] == "diffusion"
    assert record["evaluated_checkpoint"].startswith("best_step")
    assert m["nll_kind"] == "bound" and 0 < m["nll_bpd"] < 2 * math.log2(17)
    assert m["nfe"] == (50 if model == "diffusion_ddpm" else cfg.model.sampling_steps)
    assert m["samples_per_s"] > 0


def test_grid_prediction_is_the_level_posterior_mean():
    """With a constant network output the grid x0 is the Bayes posterior mean of x0 under
    uniform independent levels (a direct computation); at small noise it snaps onto the level."""
    torch.manual_seed(0)
    k = 5
    d = GaussianDiffusion(num_steps=100, prediction="grid", num_levels=k)
    levels = torch.linspace(-1, 1, k, dtype=torch.float64)
    x_data = torch.randint(0, k, (3, 2, 4, 4))
    x0 = x_data.float() * 2 / (k - 1) - 1
    for step in (0, 30, 99):
        t = torch.full((3,), step, dtype=torch.long)
        xt = d.q_sample(x0, t, torch.randn_like(x0))
        a, s = d.sqrt_acp[step].double(), d.sqrt_one_minus_acp[step].double()
        log_w = Normal(a * levels, s).log_prob(xt.double().unsqueeze(-1))  # (..., k)
        expected = (torch.softmax(log_w, -1) * levels).sum(-1)
        got, eps = d.predict(lambda x, t: torch.zeros(3, 2 * k, 4, 4), xt, t)
        assert torch.allclose(got.double(), expected, atol=1e-5), step
        assert torch.allclose(eps, (xt - d.sqrt_acp[step] * got) / d.sqrt_one_minus_acp[step])
        if step == 0:
            assert torch.allclose(got, x0, atol=1e-5)
    # the loss is the eps error of that x0 plus the level cross-entropy
    t = torch.full((3,), 30, dtype=torch.long)
    noise = torch.randn_like(x0)
    zero = lambda x, t: torch.zeros(3, 2 * k, 4, 4)  # noqa: E731
    xt = d.q_sample(x0, t, noise)
    _, eps = d.predict(zero, xt, t)
    mse = ((eps - noise) ** 2).flatten(1).mean(1)
    assert torch.allclose(d.training_loss(zero, x0, t, noise, x_data), mse, rtol=1e-5)
    a, s = d.sqrt_acp[30].double(), d.sqrt_one_minus_acp[30].double()
    log_w = Normal(a * levels, s).log_prob(xt.double().unsqueeze(-1))
    ce = -torch.log_softmax(log_w, -1).gather(-1, x_data.unsqueeze(-1)).squeeze(-1)
    got = d.training_loss(zero, x0, t, noise, x_data, ce_weight=0.5)
    assert torch.allclose(got.double(), mse.double() + 0.5 * ce.flatten(1).mean(1), rtol=1e-4)
