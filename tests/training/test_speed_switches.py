"""The hardware group's speed switches (genbench/training/speed.py) change how fast a run
trains, not what it computes: from the same seed and weights, a few real training batches on
digits give the same per-batch losses, with the switch off and on, within a tolerance stated
per switch, and the FLOPs the switched training does are the FLOP budget's count (the probe,
which counts the plain module: training/budget.py).

Tolerances (LOSS_RTOL: relative, on every batch's loss; WEIGHT_RTOL: the norm of the final
weights' difference over theirs; measured on this CPU after 6 batches, 2026-12-06):
- fused_optimizer: losses 1e-5, weights 3e-4. Fused Adam does the same arithmetic in one
  kernel; measured losses 0 (VAE, GAN, ARM) to 1.6e-6 (flow matching), weights up to 6.4e-5
  (flow matching: Adam turns a rounding-level change of a ~0 gradient into a step of ~lr).
  A learning rate 1% off moves the VAE's losses by 2e-3.
- channels_last: losses 1e-4, weights 1e-3. oneDNN's channels_last convolutions sum in another
  order; measured losses up to 1.3e-5, weights 1.4e-4 (flow matching). The VAE's images
  transposed by mistake move its losses by 3e-4. The ARM draws its dropout masks on
  channels_last activations in memory order: other masks from the same seed (the same
  distribution; losses 1.9e-4 apart after 6 batches), so its check trains without dropout
  (then: losses equal, weights 3.3e-7).
- compile: losses 1e-4, weights 1e-3 (inductor reorders float arithmetic); the VAE: 8e-8, 1e-6.

The digits batch is a quarter of the benchmark's (16 images): the same networks and kernels,
a quarter of the time.
"""

from __future__ import annotations

import contextlib
import functools
import json
from dataclasses import dataclass

import lightning as L
import pytest
import torch
from hydra.utils import instantiate
from torch.utils.flop_counter import FlopCounterMode

from genbench.core.matmul import MATMUL_PRECISIONS
from genbench.families.build import build_model
from genbench.run import run
from genbench.training.budget import probe_flops
from genbench.training.speed import SpeedSwitches, networks
from tests.commands import smoke
from tests.conftest import compose_config
from tests.trainers import quiet_trainer

BATCHES = 6
OVERRIDES = ("dataset=digits", "dataset.batch_size=16")
# Relative tolerance on each batch's loss, and on the norm of the final weights' difference.
LOSS_RTOL = {"fused_optimizer": 1e-5, "channels_last": 1e-4, "compile": 1e-4}
WEIGHT_RTOL = {"fused_optimizer": 3e-4, "channels_last": 1e-3, "compile": 1e-3}
# The ARM draws dropout masks on its channels_last activations in memory order: other masks
# (the same distribution), so its channels_last check trains without dropout.
LAYOUT_ONLY = {"arm": ("model.dropout=0.0",)}
OFF = {
    "fused_optimizer": False,
    "channels_last": False,
    "compile": False,
    "matmul_precision": "highest",
}


def config(family: str, *overrides: str):
    return compose_config([f"model={family}", *OVERRIDES, *overrides])


class Losses(L.Callback):
    """The loss every training batch returned (the GAN's: its discriminator's)."""

    def __init__(self):
        self.values: list[float] = []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx: int) -> None:
        loss = outputs["loss"] if isinstance(outputs, dict) else outputs
        self.values.append(float(loss))


@dataclass
class Trained:
    losses: torch.Tensor  # (BATCHES,) float64
    weights: torch.Tensor  # every parameter after training, flattened, float64
    flops: float | None  # FLOPs of the whole fit, counted as the budget counts them
    compiled_frames: int  # frames torch.compile compiled during the fit
    fused: list  # each optimiser's `fused` setting
    module: L.LightningModule


@functools.cache
def train(family: str, switch: str | None, overrides: tuple[str, ...] = ()) -> Trained:
    """BATCHES training batches of the family on digits from seed 0, with `switch` on (None:
    every switch off), under PyTorch's FLOP counter, except for compile (torch.compile runs
    eagerly under the counter's dispatch mode: the budget's probe counts the uncompiled module
    by construction, a copy the switches never touch). Cached: the baseline is shared."""
    cfg = config(family, *overrides)
    L.seed_everything(0, verbose=False)
    dm = instantiate(cfg.dataset)
    module = build_model(cfg.model, dm.spec)
    switches = SpeedSwitches(**{**OFF, **({switch: True} if switch else {})})
    losses = Losses()
    trainer = quiet_trainer(
        max_epochs=1, limit_train_batches=BATCHES, limit_val_batches=0, callbacks=[switches, losses]
    )
    counter = FlopCounterMode(display=False)
    frames = torch._dynamo.utils.counters["frames"]["ok"]
    with counter if switch != "compile" else contextlib.nullcontext():
        trainer.fit(module, datamodule=dm)
    return Trained(
        losses=torch.tensor(losses.values, dtype=torch.float64),
        weights=torch.cat([p.detach().double().flatten() for p in module.parameters()]),
        flops=counter.get_total_flops() if switch != "compile" else None,
        compiled_frames=torch._dynamo.utils.counters["frames"]["ok"] - frames,
        fused=[opt.defaults.get("fused") for opt in trainer.optimizers],
        module=module,
    )


@functools.cache
def probed_flops_per_batch(family: str, overrides: tuple[str, ...]) -> float:
    """The FLOP budget's count per batch, as a run probes it (the plain module)."""
    cfg = config(family, *overrides)
    L.seed_everything(0, verbose=False)
    dm = instantiate(cfg.dataset)
    module = build_model(cfg.model, dm.spec)
    hw = compose_config([]).hardware
    cost = probe_flops(module, lambda: instantiate(cfg.dataset), 2, hw.accelerator, hw.precision)
    return cost.flops_per_batch


def relative(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(((a - b).abs() / b.abs().clamp_min(1e-12)).max())


def check_same_training(family: str, switch: str, overrides: tuple[str, ...] = ()) -> Trained:
    """The switched training against the plain one: losses within LOSS_RTOL[switch], weights
    within WEIGHT_RTOL[switch], the FLOPs of both fits equal to each other and to the probe's
    count per batch."""
    off, on = train(family, None, overrides), train(family, switch, overrides)
    assert len(on.losses) == len(off.losses) == BATCHES
    torch.testing.assert_close(on.losses, off.losses, rtol=LOSS_RTOL[switch], atol=0)
    # Adam's update of a weight whose gradient is ~0 is ~lr either way (its sign is the noise's):
    # the weights are compared as a whole.
    moved = (on.weights - off.weights).norm() / off.weights.norm()
    print(
        f"{family} {switch}: losses within {relative(on.losses, off.losses):.1e} (relative), "
        f"weights {moved:.1e} (relative norm of the difference)"
    )
    assert moved < WEIGHT_RTOL[switch]
    assert off.flops == probed_flops_per_batch(family, overrides) * BATCHES
    assert on.flops in (off.flops, None)  # None: compile (see `train`)
    return on


# The default suite trains the VAE (a conv encoder and decoder; ~25 s for its three fits on two
# busy cores); make test-slow every family.
FAMILIES = [
    "vae",
    *(
        pytest.param(f, marks=pytest.mark.slow)
        for f in ("gan", "arm", "flow", "diffusion", "flow_matching", "ebm")
    ),
]


@pytest.mark.parametrize("family", FAMILIES)
def test_fused_optimizer_trains_the_same(family):
    on = check_same_training(family, "fused_optimizer")
    assert on.fused and all(f is True for f in on.fused)  # every optimiser (the GAN's two)
    assert all(f is None for f in train(family, None).fused)  # torch's default: not fused


@pytest.mark.parametrize("family", FAMILIES)
def test_channels_last_trains_the_same(family):
    """Every family is convolutional on digits: its convolutions' weights are channels_last
    after (those of more than one input channel and a kernel wider than 1x1: the others are
    both layouts at once)."""
    on = check_same_training(family, "channels_last", LAYOUT_ONLY.get(family, ()))
    convs = [
        p
        for p in on.module.parameters()
        if p.dim() == 4 and p.shape[1] > 1 and p.shape[2] * p.shape[3] > 1
    ]
    assert convs and all(p.is_contiguous(memory_format=torch.channels_last) for p in convs)
    assert not any(p.is_contiguous() for p in convs)


@pytest.mark.slow
def test_compile_trains_the_same_and_its_checkpoints_load_uncompiled(tmp_path):
    """torch.compile of the VAE's encoder and decoder (inductor, with this machine's C++
    compiler; minutes of compiling on a CPU, hence slow): the same losses, and a checkpoint
    Lightning saves during the compiled fit has the uncompiled module's keys and loads into one."""
    on = check_same_training("vae", "compile")
    assert on.compiled_frames > 0  # it did compile
    assert train("vae", None).compiled_frames == 0
    cfg = config("vae")
    dm = instantiate(cfg.dataset)
    module = build_model(cfg.model, dm.spec)
    trainer = quiet_trainer(
        max_steps=2,
        limit_val_batches=0,
        callbacks=[SpeedSwitches(**{**OFF, "compile": True})],
        enable_checkpointing=True,
        default_root_dir=str(tmp_path),
    )
    trainer.fit(module, datamodule=dm)
    (ckpt,) = tmp_path.rglob("*.ckpt")  # written while the networks ran compiled
    state = torch.load(ckpt, weights_only=True)["state_dict"]
    assert not [k for k in state if "_orig_mod" in k]
    fresh = build_model(cfg.model, dm.spec)
    fresh.load_state_dict(state)  # strict: the same keys
    assert all(net._compiled_call_impl is None for net in networks(module))  # eager after fit


def test_channels_last_leaves_points_as_they_are(tmp_path):
    """Moons' 2-D batches and an MLP's 2-D weights have no channels_last layout: a no-op."""
    cfg = compose_config(["model=vae", "dataset=moons"])
    dm = instantiate(cfg.dataset)
    module = build_model(cfg.model, dm.spec)
    SpeedSwitches(**{**OFF, "channels_last": True}).setup(None, module, "fit")
    batch = [torch.randn(8, 2), torch.zeros(8)]
    out = module.on_after_batch_transfer(batch, 0)
    assert all(a is b for a, b in zip(out, batch, strict=True))
    assert all(p.is_contiguous() for p in module.parameters())


def test_fused_optimizer_refuses_an_optimiser_without_one():
    cfg = compose_config(["model=vae", *OVERRIDES, "model.optimizer._target_=torch.optim.RMSprop"])
    module = build_model(cfg.model, instantiate(cfg.dataset).spec)
    module.configure_optimizers()  # unfused: fine
    module.fused_optimizer = True
    with pytest.raises(ValueError) as e:
        module.configure_optimizers()
    assert str(e.value) == (
        "hardware.fused_optimizer=true: torch.optim.RMSprop takes no fused argument; valid: an "
        "optimiser that does (torch.optim.Adam, AdamW, SGD) or hardware.fused_optimizer=false"
    )


def test_a_bad_matmul_precision_is_one_line_naming_the_valid_ones():
    line = "hardware.matmul_precision='fast'; valid: highest, high, medium"
    with pytest.raises(ValueError, match="^" + line.replace("(", r"\(") + "$"):
        SpeedSwitches(**{**OFF, "matmul_precision": "fast"})
    from genbench.cli import command_line_problem

    problem = command_line_problem("train", ["hardware.matmul_precision=fast"])
    assert problem == line
    before = torch.get_float32_matmul_precision()
    for precision in MATMUL_PRECISIONS:  # each a name torch takes
        torch.set_float32_matmul_precision(precision)
        assert torch.get_float32_matmul_precision() == precision
    torch.set_float32_matmul_precision(before)


def test_a_run_with_the_switches_on_records_them(tmp_path):
    """A whole run (EMA's copy, checkpoints, the best one reloaded, evaluation) with fused
    Adam and channels_last: completed, and results.json's config says what ran."""
    cfg = compose_config(
        [
            *smoke(),
            "model=gan",
            "hardware.fused_optimizer=true",
            "hardware.channels_last=true",
            "hardware.matmul_precision=high",
        ],
        tmp_path / "run",
    )
    before = torch.get_float32_matmul_precision()
    try:
        record = run(cfg)
        assert torch.get_float32_matmul_precision() == before  # "high" for training only
    finally:
        torch.set_float32_matmul_precision(before)
    assert record["status"] == "completed", record.get("error")
    written = json.loads((tmp_path / "run" / "results.json").read_text())
    hardware = written["config"]["hardware"]
    assert hardware["fused_optimizer"] is True and hardware["channels_last"] is True
    assert hardware["compile"] is False and hardware["matmul_precision"] == "high"


class Precisions(L.Callback):
    """The float32 matmul precision in force at each training batch and each validation batch."""

    def __init__(self):
        self.seen: dict[str, set] = {"train": set(), "val": set()}

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx: int) -> None:
        self.seen["train"].add(torch.get_float32_matmul_precision())

    def on_validation_batch_end(self, trainer, pl_module, *args) -> None:
        self.seen["val"].add(torch.get_float32_matmul_precision())


def test_matmul_precision_is_the_training_batches_and_validation_stays_float32():
    """TF32 (matmul_precision=high) may speed training; validation, which selects the
    checkpoint, and everything after the fit keep the process's precision ("highest")."""
    cfg = config("vae", "model.iw_samples=1")  # which precision validation sees, not its NLL
    dm = instantiate(cfg.dataset)
    module = build_model(cfg.model, dm.spec)
    seen = Precisions()
    switches = SpeedSwitches(**{**OFF, "matmul_precision": "high"})
    trainer = quiet_trainer(
        max_steps=4, limit_val_batches=1, val_check_interval=2, callbacks=[switches, seen]
    )
    assert torch.get_float32_matmul_precision() == "highest"
    trainer.fit(module, datamodule=dm)
    assert seen.seen == {"train": {"high"}, "val": {"highest"}}
    assert torch.get_float32_matmul_precision() == "highest"


def test_the_switches_leave_a_jobs_config_hash_alone():
    """A job's hash (which decides skip, resume or retrain: genbench/jobs.py) ignores the
    switches: a run recorded before they existed keeps its hash under today's config, and
    flipping one resumes a job rather than training it again; a change of what is computed
    (the Trainer's precision) is a new job."""
    from pathlib import Path

    from omegaconf import OmegaConf

    from genbench.jobs import config_hash

    runs = Path(__file__).resolve().parents[2] / "docs" / "benchmark" / "digits" / "runs"
    record = json.loads((runs / "vae_digits_seed0" / "results.json").read_text())
    assert "fused_optimizer" not in record["config"]["hardware"]  # recorded before the switches
    cfg = OmegaConf.create(record["config"])
    assert config_hash(cfg) == record["config_hash"]
    on = {"fused_optimizer": True, "channels_last": True, "compile": True}
    cfg.hardware.update({**on, "matmul_precision": "high"})
    assert config_hash(cfg) == record["config_hash"]
    cfg.hardware.precision = "bf16-mixed"
    assert config_hash(cfg) != record["config_hash"]
