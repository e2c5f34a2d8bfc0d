"""The independent-pixel baseline: its exact bits/dim by hand, and the CLI that writes its row."""

from __future__ import annotations

import math

import numpy as np
import torch

from genbench.core.results import read_results
from genbench.evaluation.baselines import IndependentPixels
from genbench.evaluation.likelihood import evaluate_nll
from tests.commands import genbench_here
from tests.conftest import datamodule


def test_independent_pixels_bits_per_dim_equals_a_count_by_hand():
    dm = datamodule("digits")
    train, _ = dm.split("train")
    test, _ = dm.split("test")
    model = IndependentPixels(dm.spec, smoothing=0.1).fit(train)
    flat, tflat = train.flatten(1).numpy(), test.flatten(1).numpy()
    total = 0.0
    for d in range(flat.shape[1]):  # per pixel: (count of the level + 0.1) / (N + 17 * 0.1)
        counts = np.bincount(flat[:, d], minlength=17) + 0.1
        total -= np.log(counts[tflat[:, d]] / counts.sum()).sum()
    want = total / (len(test) * 64 * math.log(2))
    got = evaluate_nll(model, dm.test_dataloader(), seed=0)["nll_bpd"]
    assert abs(got - want) < 1e-6
    assert math.log2(17) - got > 1.0  # far better than uniform, as pixel marginals are peaked
    samples = model.sample(500, torch.Generator().manual_seed(0))
    assert samples.shape == (500, 1, 8, 8) and samples.dtype == torch.long
    # every pixel's sample frequencies follow its fitted marginal
    assert abs(samples.float().mean() - train.float().mean()) < 0.1


def test_eval_cli_writes_the_baseline_row(tmp_path):
    args = ["baseline=pixels", "dataset=digits", "eval=fast", f"hydra.run.dir={tmp_path}"]
    out = genbench_here("eval", *args)
    assert out.returncode == 0, out.stderr[-2000:]
    rec = read_results(tmp_path / "results.json")
    assert rec["family"] == "pixel-histogram" and rec["metrics"]["nll_kind"] == "exact"
    assert rec["metrics"]["fid"] > 0 and rec["metrics"]["nll_bpd"] < math.log2(17)
