"""The diffusion process matches its closed forms, its bound terms match torch.distributions, and
each parameterisation reads its own target back as x0."""

from __future__ import annotations

import math

import pytest
import torch
from torch.distributions import Normal, kl_divergence

from genbench.maths.diffusion_parameterisations import (
    EpsPrediction,
    GridPrediction,
    VPrediction,
    make_parameterisation,
)
from genbench.maths.gaussian_diffusion import GaussianDiffusion, beta_schedule


def _process(num_steps, schedule="linear", parameterisation=None, clip=True, variance="beta_tilde"):
    return GaussianDiffusion(
        num_steps, schedule, parameterisation or EpsPrediction(), variance, clip_denoised=clip
    )


@pytest.mark.parametrize("schedule", ["linear", "cosine"])
def test_forward_process_matches_closed_form(schedule):
    torch.manual_seed(0)
    d = _process(50, schedule)
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


def test_a_linear_schedule_too_short_for_its_betas_is_refused_in_one_line():
    """Ho et al.'s linear betas scaled to T end at 0.02 * 1000 / T: at T <= 20 that is >= 1
    (a step that keeps nothing of x, an infinite bound weight), below it no variance at all."""
    for t in (5, 20):
        with pytest.raises(ValueError, match=f"num_steps={t} with the linear schedule .*valid: "):
            _process(t)
    assert beta_schedule("linear", 21).max() < 1 and beta_schedule("cosine", 5).max() < 1


def test_bound_terms_match_torch_distributions():
    torch.manual_seed(0)
    d = _process(24)
    lin = torch.nn.Linear(4, 4)

    def model(x, t):
        return lin(x) * (1 + t.float()[:, None] / 24)

    k = 5
    x_data = torch.randint(0, k, (3, 4))
    x0 = x_data.float() / (k - 1) * 2 - 1
    acp = d.alphas_cumprod
    for t in (0, 1, 7, 23):
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
    # continuous data: the t=0 term is the Gaussian density of x0 under p(x_0 | x_1)
    torch.manual_seed(5)
    got = d.vb_term(model, x0, torch.zeros(3, dtype=torch.long), None)
    torch.manual_seed(5)
    xt = acp[0].sqrt() * x0 + (1 - acp[0]).sqrt() * torch.randn_like(x0)
    mean, logvar, _ = d.p_mean_variance(model, xt, torch.zeros(3, dtype=torch.long))
    want = -Normal(mean, (0.5 * logvar).exp()).log_prob(x0).sum(1)
    assert torch.allclose(got, want, rtol=1e-5)


@pytest.mark.parametrize("prediction", [EpsPrediction(), VPrediction()])
def test_the_true_target_gives_back_x0_and_zero_loss(prediction):
    torch.manual_seed(0)
    d = _process(100, "cosine", prediction, clip=False)
    x0, noise = torch.rand(4, 3) * 2 - 1, torch.randn(4, 3)
    t = torch.tensor([0, 10, 50, 99])
    a, s = d.sqrt_acp[t][:, None], d.sqrt_one_minus_acp[t][:, None]
    target = prediction.target(x0, noise, a, s)
    oracle = lambda xt, tt: target  # noqa: E731
    xt = d.q_sample(x0, t, noise)
    assert torch.allclose(d.predict_x0(oracle, xt, t), x0, atol=1e-4)
    assert torch.allclose(d.training_loss(oracle, x0, t, noise), torch.zeros(4))
    # an output off by one everywhere costs exactly 1 (the per-example mean squared error)
    off = d.training_loss(lambda xt, tt: target + 1.0, x0, t, noise)
    assert torch.allclose(off, torch.ones(4), atol=1e-6)


def test_grid_prediction_is_the_level_posterior_mean():
    """With a constant network output the grid x0 is the Bayes posterior mean of x0 under
    uniform independent levels (a direct computation); at small noise it snaps onto the level."""
    torch.manual_seed(0)
    k = 5
    d = _process(100, parameterisation=GridPrediction(k, 0.0))
    levels = torch.linspace(-1, 1, k, dtype=torch.float64)
    x_data = torch.randint(0, k, (3, 2, 4, 4))
    x0 = x_data.float() * 2 / (k - 1) - 1
    zero = lambda x, t: torch.zeros(3, 2 * k, 4, 4)  # noqa: E731
    for step in (0, 30, 99):
        t = torch.full((3,), step, dtype=torch.long)
        xt = d.q_sample(x0, t, torch.randn_like(x0))
        a, s = d.sqrt_acp[step].double(), d.sqrt_one_minus_acp[step].double()
        log_w = Normal(a * levels, s).log_prob(xt.double().unsqueeze(-1))  # (..., k)
        expected = (torch.softmax(log_w, -1) * levels).sum(-1)
        got = d.predict_x0(zero, xt, t)
        assert torch.allclose(got.double(), expected, atol=1e-5), step
        if step == 0:
            assert torch.allclose(got, x0, atol=1e-5)
    # the loss is the eps error of that x0 plus the level cross-entropy
    t = torch.full((3,), 30, dtype=torch.long)
    noise = torch.randn_like(x0)
    xt = d.q_sample(x0, t, noise)
    eps = (xt - d.sqrt_acp[30] * d.predict_x0(zero, xt, t)) / d.sqrt_one_minus_acp[30]
    mse = ((eps - noise) ** 2).flatten(1).mean(1)
    assert torch.allclose(d.training_loss(zero, x0, t, noise, x_data), mse, rtol=1e-5)
    a, s = d.sqrt_acp[30].double(), d.sqrt_one_minus_acp[30].double()
    log_w = Normal(a * levels, s).log_prob(xt.double().unsqueeze(-1))
    ce = -torch.log_softmax(log_w, -1).gather(-1, x_data.unsqueeze(-1)).squeeze(-1)
    d_ce = _process(100, parameterisation=GridPrediction(k, 0.5))
    got = d_ce.training_loss(zero, x0, t, noise, x_data)
    assert torch.allclose(got.double(), mse.double() + 0.5 * ce.flatten(1).mean(1), rtol=1e-4)


def test_bad_names_are_refused_in_one_line():
    with pytest.raises(ValueError, match="prediction='x'; valid: 'eps', 'v', 'grid'"):
        make_parameterisation("x", 17, 0.0)
    with pytest.raises(ValueError, match="needs discrete data"):
        make_parameterisation("grid", None, 0.0)
    with pytest.raises(ValueError, match="variance='y'"):
        _process(10, variance="y")
    with pytest.raises(ValueError, match="beta schedule 'z'"):
        _process(10, "z")
