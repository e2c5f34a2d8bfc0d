"""A whole run through the composed config: fit, evaluate, results.json, loggers."""

from __future__ import annotations

import json
import math
from pathlib import Path

from genbench.core.results import METRIC_KEYS, read_results
from genbench.reporting.wandb_offline import read_offline_run
from genbench.run import run
from tests.commands import genbench_here, smoke
from tests.families.helpers import recomputed_test_bpd


def test_run_writes_results_and_wandb_offline_summary(fast_cfg):
    cfg = fast_cfg("model=vae", "dataset=digits", "logger=wandb", "model.iw_samples=16")
    record = run(cfg)
    out = Path(cfg.paths.output_dir)
    on_disk = read_results(out / "results.json")
    assert on_disk["status"] == "completed" and on_disk["family"] == "vae"
    assert on_disk["model"] == "vae" and on_disk["dataset"] == "digits" and on_disk["seed"] == 0
    m = on_disk["metrics"]
    assert set(m) == set(METRIC_KEYS)  # every key the evaluation writes is declared (core/keys.py)
    # The number is the evaluated weights' bits/dim, recomputed by hand (another IWAE draw:
    # within 0.02; an extra 1/ln 2, nats, or the untrained weights are off by far more), and
    # 20 steps have learnt something: uniform noise is log2(17) = 4.09.
    assert m["nll_kind"] == "bound" and m["nll_bpd"] < math.log2(17) - 0.5
    assert abs(m["nll_bpd"] - recomputed_test_bpd(on_disk, out)) < 0.02
    assert m["train_steps"] == 20 and m["train_time_s"] > 0 and m["params"] > 0
    assert m["samples_per_s"] > 0 and m["nfe"] == 1
    assert m["fid"] > 0 and m["fidelity_extractor"] == "classifier"  # eval=fast: 100 samples
    assert on_disk["metrics"] == record["metrics"]
    assert on_disk["config"]["model"]["_target_"] == "genbench.families.vae.VAE"
    assert (out / "samples.png").stat().st_size > 0
    assert (out / "checkpoints" / "last.ckpt").exists()

    runs = list((out / "wandb").glob("offline-run-*"))
    assert len(runs) == 1
    wb = read_offline_run(runs[0])
    assert wb["summary"]["nll_bpd"] == m["nll_bpd"]
    assert wb["summary"]["samples_per_s"] == m["samples_per_s"]
    assert wb["summary"]["nll_kind"] == "bound"
    assert set(wb["tags"]) == {"vae", "digits"} and wb["job_type"] == "train"
    assert wb["config"]["model"]["latent_dim"] == cfg.model.latent_dim
    assert wb["config"]["family"] == "vae" and wb["config"]["budget_kind"] == "steps"
    # The W&B Table of samples with the evaluation classifier's label and confidence.
    (table_file,) = runs[0].rglob("sample_table_*.table.json")
    table = json.loads(table_file.read_text())
    assert table["columns"] == ["sample", "label", "confidence", "family", "model", "seed"]
    assert len(table["data"]) == cfg.eval.grid_samples
    assert all(0 <= row[1] <= 9 and 0 < row[2] <= 1 for row in table["data"])


def test_run_on_points_with_csv_logger(fast_cfg):
    cfg = fast_cfg("model=vae", "dataset=moons", "logger=csv")
    record = run(cfg)
    out = Path(cfg.paths.output_dir)
    assert record["status"] == "completed" and record["dataset"] == "moons"
    metrics_csv = (out / "csv" / "metrics.csv").read_text()
    assert "test/nll_bpd" in metrics_csv
    assert (out / "samples.png").exists()


def test_cli_single_run(tmp_path):
    args = ["dataset=8gaussians", *smoke(), f"hydra.run.dir={tmp_path}"]
    out = genbench_here("train", *args)
    assert out.returncode == 0, out.stderr[-2000:]
    assert read_results(tmp_path / "results.json")["dataset"] == "8gaussians"


def test_gan_checkpoint_is_the_best_validation_fid(fast_cfg):
    """The GAN (no likelihood) keeps the checkpoint of its lowest val/fid, the FID of fixed-noise
    samples against the validation split; evaluation then uses that checkpoint."""
    import csv

    import torch
    from torch_fidelity.metric_fid import fid_features_to_statistics, fid_statistics_to_metric

    from genbench.evaluation.extractors import resolve_extractor
    from genbench.evaluation.features import FeatureSet
    from genbench.families.build import build_model

    cfg = fast_cfg(
        "model=gan",
        "dataset=digits",
        "logger=csv",
        "budget.validations=4",
        "trainer.limit_val_batches=null",
    )
    record = run(cfg)
    out = Path(cfg.paths.output_dir)
    with open(out / "csv" / "metrics.csv") as f:
        rows = [r for r in csv.DictReader(f) if r.get("val/fid")]
    logged = {int(r["step"]): float(r["val/fid"]) for r in rows}
    assert len(logged) >= 3 and all(v > 0 for v in logged.values())
    (best,) = (out / "checkpoints").glob("best_step*.ckpt")
    ckpt = torch.load(best, map_location="cpu", weights_only=False)
    best_step = min(logged, key=logged.get)  # the logger's step counts batches, not updates
    (state,) = [v for k, v in ckpt["callbacks"].items() if k.startswith("BestCheckpoint")]
    assert state["monitor"] == "val/fid" and record["evaluated_checkpoint"] == best.name
    assert float(state["best_model_score"]) == min(logged.values())

    # The same number from the checkpoint's own samples, computed here with torch-fidelity's FID.
    from hydra.utils import instantiate

    dm = instantiate(cfg.dataset)
    dm.setup("fit")
    module = build_model(cfg.model, dm.spec)
    module.load_state_dict(ckpt["state_dict"])
    module.eval()
    vc = cfg.callbacks.validation_fid
    gen = torch.Generator().manual_seed(vc.seed)
    with torch.no_grad():
        samples = module.sample(vc.num_samples, generator=gen)
    ev = cfg.eval
    features = FeatureSet(
        resolve_extractor(dm, ev.cache_dir, inception_download=ev.inception_download),
        batch_size=ev.fidelity_batch_size,
        cache_dir=ev.cache_dir,
    )
    layer = features.layers["fid"]
    ref = fid_features_to_statistics(features(dm.split("val")[0])[layer])
    fid = fid_statistics_to_metric(ref, fid_features_to_statistics(features(samples)[layer]), False)
    assert abs(fid["frechet_inception_distance"] - logged[best_step]) < 1e-3 * logged[best_step]


def test_a_likelihood_familys_evaluated_checkpoint_is_its_lowest_validation_bits_per_dim(
    fast_cfg,
):
    """The step of the evaluated best_step*.ckpt is the step whose val/nll_bpd, as the CSV
    logger recorded it, is the lowest of the run's validations."""
    import csv

    cfg = fast_cfg(
        "model=vae",
        "dataset=digits",
        "logger=csv",
        "budget.steps=40",
        "budget.validations=5",
        "model.iw_samples=16",  # validation and test: IWAE-16 (the default 256 costs 5x the run)
    )
    record = run(cfg)
    out = Path(cfg.paths.output_dir)
    with open(out / "csv" / "metrics.csv") as f:
        rows = [r for r in csv.DictReader(f) if r.get("val/nll_bpd")]
    values = [float(r["val/nll_bpd"]) for r in sorted(rows, key=lambda r: int(r["step"]))]
    assert len(values) == 5  # validations at steps 8, 16, 24, 32, 40
    best = min(range(5), key=values.__getitem__)
    assert record["evaluated_checkpoint"] == f"best_step{8 * (best + 1):06d}.ckpt"
    assert abs(record["best_val"]["value"] - values[best]) <= 1e-6 * values[best]
