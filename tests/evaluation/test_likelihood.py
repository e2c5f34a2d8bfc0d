"""Bits/dim arithmetic by hand, and the accumulated metric against a direct computation."""

from __future__ import annotations

import math

import pytest
import torch

from genbench.evaluation.likelihood import BitsPerDim, bits_per_dim, evaluate_nll
from genbench.families.base import GenerativeModule
from tests.conftest import datamodule


class UniformImageModel(GenerativeModule):
    """Every K-level pixel uniform: NLL = D ln K exactly, so bpd = log2 K."""

    family = "uniform"
    nll_kind = "exact"

    def __init__(self, spec):
        super().__init__(spec)
        self.dummy = torch.nn.Parameter(torch.zeros(()))

    def nll(self, batch):
        x = self.data(batch)
        return torch.full((len(x),), self.spec.num_dims * math.log(self.spec.num_levels))


def test_bits_per_dim_by_hand():
    # 64 dims, NLL 64 * ln 2 nats -> exactly 1 bit per dim.
    assert bits_per_dim(torch.tensor(64 * math.log(2)), 64).item() == 1.0
    assert (
        abs(
            bits_per_dim(torch.tensor(100.0, dtype=torch.float64), 64).item()
            - 100 / 64 / 0.6931471805599453
        )
        < 1e-12
    )


def test_uniform_model_scores_log2_k_over_whole_test_split():
    dm = datamodule("digits", eval_batch_size=100)  # 447 examples -> 5 batches, last one partial
    out = evaluate_nll(UniformImageModel(dm.spec), dm.test_dataloader(), seed=0)
    assert abs(out["nll_bpd"] - math.log2(17)) < 1e-6  # float32 NLLs
    assert out["nll_bpd_stderr"] < 1e-6
    per = out["per_example_bpd"]
    assert per.shape == (447,) and torch.allclose(per, torch.full_like(per, math.log2(17)))


def test_metric_mean_and_stderr_match_direct_computation():
    torch.manual_seed(0)
    nats = torch.rand(1000) * 200
    metric = BitsPerDim(num_dims=64)
    for chunk in nats.split(77):
        metric.update(chunk)
    out = metric.compute()
    bpd = nats.double() / (64 * math.log(2))
    assert abs(out["nll_bpd"] - bpd.mean().item()) < 1e-9
    assert abs(out["nll_bpd_stderr"] - (bpd.std() / math.sqrt(1000)).item()) < 1e-9


# Every family whose test NLL draws noise, small enough to evaluate in seconds.
STOCHASTIC = {
    "diffusion": ["model.unet.channels=8", "model.nll_t_samples=2"],
    "flow_matching": [
        "model.unet.channels=8",
        "model.unet.attention_resolutions=[]",
        "model.nll_steps=2",
    ],
    "vae": ["model.iw_samples=4", "model.iw_chunk=4"],
    "flow": [],
    "ebm": [
        "model.ais_chains=4",
        "model.ais_repeats=2",
        "model.ais_temps=[5,10]",
        "model.ais_pilot_chains=4",
    ],
}


@pytest.mark.parametrize("model", sorted(STOCHASTIC))
def test_runs_of_different_seeds_get_independent_estimator_draws_each_reproducible(tmp_path, model):
    """evaluate() seeds its draws by (eval.sample_seed, run seed): a stochastic estimator's
    per-example values differ between run seeds 0 and 1 on the same checkpoint, and repeat
    exactly for the same pair (timesteps and noise, probes, importance samples, dequantisation,
    AIS chains)."""
    import numpy as np
    from hydra.utils import instantiate

    from genbench.evaluation.evaluate import evaluate
    from genbench.evaluation.likelihood import PER_EXAMPLE_NLL
    from genbench.families.build import build_model
    from tests.conftest import compose_config, eval_settings

    cfg = compose_config([f"model={model}", "dataset=digits", *STOCHASTIC[model]], tmp_path)
    dm = instantiate(cfg.dataset)
    module = build_model(cfg.model, dm.spec)
    if model == "ebm":  # a model that is not its base, so that log Z has something to estimate
        module.fit_base(dm.split("train")[0])
        torch.manual_seed(0)
        for p in module.energy.parameters():
            p.data.add_(0.05 * torch.randn_like(p))
    off = eval_settings(fidelity=False, throughput_samples=0, grid_samples=0, nll_examples=64)
    per = {}
    for name, run_seed in (("a", 0), ("b", 1), ("c", 0)):
        evaluate(module, dm, tmp_path / name, off, run_seed=run_seed)
        per[name] = np.load(tmp_path / name / PER_EXAMPLE_NLL)
    assert np.array_equal(per["a"], per["c"])
    assert not np.allclose(per["a"], per["b"])
