"""lr_scale: every learning rate of a model config times the scale (the sensitivity sweep of
issue 33), recorded in the run's config as trained; a bad scale or a config without a learning
rate is a one-line error."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from genbench.families.build import scale_learning_rates
from tests.conftest import compose_config


def test_every_learning_rate_of_the_config_is_scaled_and_nothing_else(tmp_path):
    arm = compose_config(["model=arm"], tmp_path / "a").model
    gan = compose_config(["model=gan"], tmp_path / "g").model
    assert scale_learning_rates(arm, 1.0) is arm
    before = arm.optimizer.lr
    scaled = scale_learning_rates(arm, 3.0)
    assert scaled.optimizer.lr == pytest.approx(3 * arm.optimizer.lr)
    assert (
        scaled.optimizer.weight_decay == arm.optimizer.weight_decay and scaled.hidden == arm.hidden
    )
    assert arm.optimizer.lr == before  # the original is untouched
    g = scale_learning_rates(gan, 1 / 3)
    assert (g.lr_g, g.lr_d) == pytest.approx((gan.lr_g / 3, gan.lr_d / 3))
    for bad in (0.0, -1.0):
        with pytest.raises(ValueError, match=r"lr_scale=.*valid: a number > 0"):
            scale_learning_rates(arm, bad)
    no_rate = OmegaConf.create({"_target_": "my.Model", "hidden": 8})
    with pytest.raises(ValueError, match="has no learning rate to scale") as e:
        scale_learning_rates(no_rate, 3.0)
    assert "\n" not in str(e.value)


def test_a_run_trains_with_and_records_the_scaled_rate(fast_cfg):
    from genbench.run import run

    cfg = fast_cfg("model=vae", "dataset=digits", "lr_scale=3", "eval.nll=false")
    run(cfg)
    record = json.loads((Path(cfg.paths.output_dir) / "results.json").read_text())  # as written
    assert record["config"]["lr_scale"] == 3
    assert record["config"]["model"]["optimizer"]["lr"] == pytest.approx(3e-3)
    assert record["status"] == "completed"
