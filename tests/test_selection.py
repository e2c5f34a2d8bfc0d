"""Model selection picks the checkpoint the test would (issue 31).

Each likelihood family trains a short digits run that keeps the checkpoint of every validation
(callbacks.best_checkpoint.save_top_k=-1). Every checkpoint is then scored on the validation
images the run selected on, by the test's estimator with 4x its draws (timesteps, importance
samples, probes and dequantisation, AIS chains); the checkpoint the run chose must be within two
standard errors of the best of them (paired over the images, plus a shared log Z error).

And the failure of the MNIST GPU run, reproduced on digits: flow matching validated with a
two-step ODE, whose error moves with training, ranks the checkpoints otherwise and picks one that
the accurate score puts clearly behind the best; the test's own estimator does not.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf

from genbench.evaluation.likelihood import evaluate_nll
from genbench.families.build import build_model
from genbench.run import run

# Small models and estimators per family; every run: 4 validations over its steps.
FAMILIES = {
    "arm": (60, ["model.hidden=16", "model.layers=3"]),
    "flow": (60, []),
    "vae": (60, ["model.iw_samples=32", "model.iw_chunk=32"]),
    "diffusion": (60, ["model.unet.channels=8", "model.nll_t_samples=10"]),
    "ebm": (
        60,
        [
            "model.ais_chains=8",
            "model.ais_repeats=4",
            "model.ais_temps=[20,40]",
            "model.ais_pilot_chains=8",
            "model.sgld_steps=5",
            "model.sample_steps=10",
        ],
    ),
    "flow_matching": (1200, ["model.unet.channels=16", "model.unet.attention_resolutions=[]"]),
}
DRAWS = 4  # the accurate score's draws, per draw of the selection criterion


def kept_run(fast_cfg, model: str) -> tuple[dict, Path]:
    """A digits run of `model` keeping every validation's checkpoint, its test evaluation off."""
    steps, small = FAMILIES[model]
    cfg = fast_cfg(
        f"model={model}",
        "dataset=digits",
        "logger=csv",
        f"budget.steps={steps}",
        "budget.validations=6" if model == "flow_matching" else "budget.validations=4",
        "callbacks.best_checkpoint.save_top_k=-1",
        "budget.val_examples=128",
        "eval.nll=false",
        "eval.fidelity=false",
        "eval.throughput_samples=0",
        "eval.grid_samples=0",
        *small,
    )
    return run(cfg), Path(cfg.paths.output_dir)


def logged_validation(out: Path) -> dict[int, float]:
    """{optimiser step: val/nll_bpd} from the CSV logger (which writes the step index, one
    below the number of steps done, the checkpoint's name)."""
    with open(out / "csv" / "metrics.csv") as f:
        rows = [r for r in csv.DictReader(f) if r.get("val/nll_bpd")]
    return {int(r["step"]) + 1: float(r["val/nll_bpd"]) for r in rows}


def score(record: dict, ckpt: Path, how: dict) -> tuple[np.ndarray, float]:
    """(per-example bits/dim (N,), shared stderr) of the checkpoint on the run's validation
    images: the test estimator with `how` changes ({"draws": k} averages k passes; other keys set
    hyper-parameters), seeds apart from the run's."""
    cfg = OmegaConf.create(record["config"])
    dm = instantiate(cfg.dataset)
    module = build_model(cfg.model, dm.spec)
    module.load_state_dict(torch.load(ckpt, weights_only=False)["state_dict"])
    module.eval()
    for key, value in how.items():
        if key == "iw_samples":
            module.iw_samples = value
        elif key != "draws":
            module.hparams[key] = value
    passes = [
        evaluate_nll(module, dm.val_dataloader(), seed=1000 + i) for i in range(how.get("draws", 1))
    ]
    per = torch.stack([p["per_example_bpd"] for p in passes]).mean(0).numpy()
    shared = float(np.mean([p["nll_bpd_shared_stderr"] for p in passes])) / math.sqrt(len(passes))
    return per, shared


def accurate(record: dict) -> dict:
    """The test estimator with DRAWS x its draws."""
    hp, family = record["config"]["model"], record["family"]
    if family == "vae":
        return {"iw_samples": DRAWS * hp["iw_samples"]}
    if family == "diffusion":
        return {"nll_t_samples": DRAWS * hp["nll_t_samples"]}
    if family == "ebm":
        draws = DRAWS * hp["nll_dequant_samples"]
        return {"ais_chains": DRAWS * hp["ais_chains"], "nll_dequant_samples": draws}
    return {"draws": DRAWS} if family in ("flow", "flow_matching") else {}  # the ARM: exact


def checkpoints(out: Path) -> dict[int, Path]:
    return {
        int(p.stem.removeprefix("best_step")): p for p in out.glob("checkpoints/best_step*.ckpt")
    }


def gap(scores: dict[int, tuple[np.ndarray, float]], chosen: int) -> tuple[float, float, int]:
    """(chosen's mean minus the best's, the paired standard error of that, the best step)."""
    best = min(scores, key=lambda s: scores[s][0].mean())
    (a, sa), (b, sb) = scores[chosen], scores[best]
    d = a - b
    se = math.sqrt(d.var(ddof=1) / len(d) + (sa**2 + sb**2 if chosen != best else 0.0))
    return float(d.mean()), se, best


@pytest.mark.parametrize(
    "model",
    [
        # Slow: the default suite keeps the two families whose validation estimators are the
        # noisiest (diffusion's timesteps, the EBM's AIS); flow matching's (with the old
        # two-step-ODE rule it replaced) is the most expensive of all, 3 minutes here.
        pytest.param(m, marks=pytest.mark.slow)
        if m in ("arm", "flow", "vae", "flow_matching")
        else m
        for m in FAMILIES
    ],
)
def test_the_chosen_checkpoint_is_within_two_standard_errors_of_the_best(fast_cfg, model):
    record, out = kept_run(fast_cfg, model)
    ckpts = checkpoints(out)
    assert len(ckpts) >= 4 and set(ckpts) == set(logged_validation(out))
    m = record["metrics"]
    assert m["selection"]["metric"] == "val/nll_bpd" and m["selection"]["examples"] == 128
    chosen = int(Path(record["evaluated_checkpoint"]).stem.removeprefix("best_step"))
    assert chosen == min(logged_validation(out), key=logged_validation(out).get)
    how = accurate(record)
    scores = {step: score(record, path, how) for step, path in ckpts.items()}
    diff, se, best = gap(scores, chosen)
    assert diff <= 2 * se, (model, chosen, best, diff, se)
    if model != "flow_matching":
        return
    # The old rule: a two-step validation ODE (the MNIST GPU run's). Its error moves with
    # training, so it ranks these checkpoints otherwise and picks an earlier one that the
    # accurate score puts well behind the best (here step 1000 of 1200, 0.02 bits/dim).
    coarse = {step: score(record, path, {"nll_steps": 2})[0].mean() for step, path in ckpts.items()}
    coarse_choice = min(coarse, key=coarse.get)
    old_diff, old_se, _ = gap(scores, coarse_choice)
    assert coarse_choice < chosen and old_diff > 2 * old_se, (coarse, coarse_choice, chosen)
