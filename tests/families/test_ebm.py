"""EBM: an untrained image model is exactly its base, runs complete with an AIS ladder, a pass
estimates log Z once from its seed, the AIS spread enters the standard error, a resumed run is
bit-for-bit the uninterrupted one, and a run that blows up ends as "diverged" with the step.
(AIS, quadrature, SGLD and the histogram base are checked against closed forms in
tests/estimators, tests/samplers and tests/maths; the whole estimate against a known partition
function in test_ebm_known_partition.py.)"""

from __future__ import annotations

import math
from pathlib import Path

import lightning as L
import numpy as np
import pytest
import torch
from hydra.utils import instantiate
from lightning.pytorch.callbacks import ModelCheckpoint

from genbench.core.results import read_results
from genbench.estimators.per_pass import PerPass
from genbench.families.build import build_model
from genbench.run import run
from tests.conftest import compose_config
from tests.trainers import quiet_trainer

FAST_AIS = [
    "model.ais_chains=4",
    "model.ais_repeats=4",
    "model.ais_temps=[10,20,40]",
    "model.ais_pilot_chains=8",
    "model.sgld_steps=5",
    "model.sample_steps=10",
]


def _build(tmp_path, dataset: str, *overrides: str):
    cfg = compose_config(["model=ebm", f"dataset={dataset}", *overrides], tmp_path / "cfg")
    dm = instantiate(cfg.dataset)
    return cfg, dm, build_model(cfg.model, dm.spec)


def test_untrained_image_model_is_exactly_its_base(tmp_path):
    _, dm, module = _build(tmp_path, "digits", *FAST_AIS)
    x_train, x_test = dm.split("train")[0], dm.split("test")[0][:64]
    module.fit_base(x_train)
    # The base's discrete NLL, computed independently from the level frequencies.
    k = dm.spec.num_levels
    flat = x_train.flatten(1)
    counts = torch.stack([torch.bincount(flat[:, d], minlength=k) for d in range(flat.shape[1])])
    probs = (counts + 1.0) / (counts + 1.0).sum(1, keepdim=True)
    base_nll = -torch.log(probs.gather(1, x_test.flatten(1).T)).sum(0)
    with torch.inference_mode():
        nll = module.nll((x_test, None))
    assert module.log_z()["log_z"] == pytest.approx(0.0, abs=1e-4)  # float32 log q sums
    assert torch.allclose(nll, base_nll, rtol=1e-5)
    # Two rungs agree (E = 0: nothing to anneal): converged, the ladder stops at the second.
    diag = module.nll_diagnostics()
    assert diag["log_z_converged"] is True and len(diag["log_z_ladder"]) == 2
    base_bpd = base_nll.mean().item() / (64 * math.log(2))
    assert all(r["nll_bpd"] == pytest.approx(base_bpd, abs=1e-5) for r in diag["log_z_ladder"])
    # Its samples are exact base draws: pixel means match the base's means.
    with torch.inference_mode():
        s = module.sample(2000, torch.Generator().manual_seed(0)).flatten(1).float()
    levels = torch.arange(k, dtype=torch.float)
    assert (s.mean(0) - probs @ levels).abs().max() < 0.5


def test_sampler_is_sgld_with_two_evaluations_per_step(tmp_path):
    _, _, module = _build(tmp_path, "digits", "model.sample_steps=100")
    assert module.sampling_cost() == {"nfe": 200, "sampler": "SGLD-100 from base"}
    module.configure_sampler("sgld", 25)
    assert module.sampling_cost() == {"nfe": 50, "sampler": "SGLD-25 from base"}
    assert module.sample(3).shape == (3, 1, 8, 8)
    with pytest.raises(ValueError, match="sampler='ddim'"):
        module.configure_sampler("ddim", 25)


def test_a_pass_estimates_log_z_once_from_its_seed(tmp_path):
    _, dm, module = _build(tmp_path, "digits", *FAST_AIS)
    module.fit_base(dm.split("train")[0])
    torch.manual_seed(0)
    for p in module.energy.parameters():  # a model that is not its base
        p.data.add_(0.05 * torch.randn_like(p))
    x = dm.split("val")[0][:100]

    def one_pass(seed: int, batches: int = 1) -> tuple[torch.Tensor, float]:
        module.begin_nll_pass(seed)
        torch.manual_seed(1)  # the dequantisation draws: the caller's per-batch seed
        nats = torch.cat([module.nll((b, None)) for b in x.chunk(batches)])
        return nats, module.log_z()["log_z"]

    first, log_z = one_pass(5)
    module._log_z = PerPass()  # recompute: the same AIS chains from the same seed
    again, log_z_again = one_pass(5)
    assert torch.equal(again, first) and log_z_again == log_z
    assert one_pass(6)[1] != log_z  # another pass seed, other chains
    # One log Z for the pass: scoring in two batches changes the draws, not log Z.
    assert one_pass(5, batches=2)[1] == log_z
    # Changed weights are re-estimated (the cache follows the weights), not served stale:
    # E + 1 gives log Z_E - 1 (AIS is exactly shift-equivariant) and the same NLL.
    with torch.no_grad():
        module.energy.net[-1].bias.add_(1.0)
    shifted, log_z_shifted = one_pass(5)
    assert torch.allclose(shifted, first, atol=1e-4)
    assert log_z_shifted == pytest.approx(log_z - 1, abs=1e-4)


@pytest.mark.parametrize("dataset", ["digits", "moons"])
def test_run_writes_results_with_estimate(fast_cfg, dataset):
    cfg = fast_cfg("model=ebm", f"dataset={dataset}", *FAST_AIS)
    run(cfg)
    rec = read_results(Path(cfg.paths.output_dir) / "results.json")
    m = rec["metrics"]
    assert rec["status"] == "completed" and rec["family"] == "ebm"
    assert m["nll_kind"] == "estimate" and math.isfinite(m["nll_bpd"])
    assert m["nll_bpd_stderr"] > 0
    assert m["nfe"] == 20 and m["samples_per_s"] > 0
    assert m["train_steps"] == 20
    if dataset == "moons":  # quadrature: no ladder
        assert "log_z_ladder" not in m or m["log_z_ladder"] is None
        return
    assert m["sampler"] == "SGLD-10 from base"
    ladder = m["log_z_ladder"]
    temps = [r["temperatures"] for r in ladder]
    assert temps == [10, 20, 40][: len(temps)] and len(temps) >= 2  # stops once converged
    assert all(r["chains"] == 16 and r["repeats"] == 4 for r in ladder)
    assert all(len(r["log_z_repeats"]) == 4 and r["log_z_spread"] >= 0 for r in ladder)
    assert isinstance(m["log_z_converged"], bool)
    # The reported NLL is the longest rung's.
    assert ladder[-1]["nll_bpd"] == pytest.approx(m["nll_bpd"], rel=1e-6)
    # Its standard error adds the AIS spread over repetitions (shared by every example) to the
    # spread over examples, each recomputed here from the ladder and the per-example file.
    per_example = np.load(Path(cfg.paths.output_dir) / "test_nll_bpd.npy")
    over_examples = per_example.std(ddof=1) / math.sqrt(len(per_example))
    shared = ladder[-1]["log_z_stderr"] / (64 * math.log(2))
    assert shared > 0.2 * over_examples  # large enough for the sum to tell
    assert m["nll_bpd_stderr"] == pytest.approx(math.hypot(over_examples, shared), rel=1e-6)
    # Selected by the test's own estimator.
    assert m["selection"]["estimator"] == m["nll_estimator"]["estimator"]
    assert m["selection"]["split"] == "val" and m["nll_estimator"]["split"] == "test"


def _trainer(tmp_path, cfg, steps: int, ckpt_every: int | None = None) -> L.Trainer:
    """Lightning with the run's EMA and RNG-state callbacks, validating every 2 steps."""
    callbacks = [instantiate(cfg.callbacks.ema), instantiate(cfg.callbacks.rng_state)]
    if ckpt_every:
        every = {"every_n_train_steps": ckpt_every, "save_top_k": -1}
        callbacks.append(
            ModelCheckpoint(tmp_path, "step{step}", auto_insert_metric_name=False, **every)
        )
    return quiet_trainer(
        max_steps=steps,
        val_check_interval=2,
        check_val_every_n_epoch=None,
        limit_val_batches=1,
        num_sanity_val_steps=0,
        enable_checkpointing=bool(ckpt_every),
        deterministic=True,
        callbacks=callbacks,
    )


def test_resume_from_a_step_checkpoint_is_bit_for_bit(tmp_path):
    # 4 batches of 250 per epoch: the step-4 checkpoint ends an epoch (mid-epoch, the data
    # module restarts the pass: not exact for any family) and coincides with a validation.
    small = [*FAST_AIS, "model.sgld_steps=3", "model.buffer_size=256", "model.ais_temps=[5,10]"]

    def fresh():
        L.seed_everything(0)
        return _build(tmp_path, "digits", "dataset.batch_size=250", *small)

    cfg, dm, full = fresh()
    _trainer(tmp_path / "full", cfg, 7).fit(full, datamodule=dm)

    cfg, dm, first = fresh()
    _trainer(tmp_path / "ckpt", cfg, 4, ckpt_every=4).fit(first, datamodule=dm)
    ckpt = tmp_path / "ckpt" / "step4.ckpt"
    assert torch.load(ckpt, weights_only=False)["ebm"]["replay"].shape == (256, 64)

    cfg, dm, resumed = fresh()
    torch.manual_seed(123)  # whatever the process drew since, the checkpoint's state wins
    _trainer(tmp_path / "resumed", cfg, 7).fit(resumed, datamodule=dm, ckpt_path=ckpt)
    for (name, a), b in zip(full.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), name
    assert torch.equal(full.replay.states, resumed.replay.states)
    assert not torch.equal(full.replay.states, first.replay.states)  # the resumed run did train on
    rngs = [m.replay.generator(m.device).get_state() for m in (full, resumed)]
    assert torch.equal(*rngs)


def test_divergence_is_recorded_with_its_step(fast_cfg):
    # An absurd learning rate: Adam moves every weight by ~1e30, the next energies overflow.
    cfg = fast_cfg("model=ebm", "dataset=moons", "model.optimizer.lr=1e30", "model.sgld_steps=2")
    record = run(cfg)
    rec = read_results(Path(cfg.paths.output_dir) / "results.json")
    assert record["status"] == rec["status"] == "diverged"
    step = rec["diverged_at_step"]
    assert 1 <= step < 20 and rec["metrics"]["train_steps"] == step
    # The monitor reports the non-finite loss; the family's own reason says the same.
    assert rec["error"].startswith("non-finite") and rec["error"].endswith(f"at step {step}")
    assert rec["metrics"]["nll_bpd"] is None  # a diverged run is not evaluated
