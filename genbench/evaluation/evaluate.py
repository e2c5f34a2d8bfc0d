"""evaluate(): the family-agnostic evaluation stage. It only calls the GenerativeModule API."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import torch

from genbench.core.settings import EvalSettings
from genbench.data.datamodules import random_subset
from genbench.evaluation.curves import score_curve
from genbench.evaluation.images import save_nearest_neighbours, save_samples
from genbench.evaluation.latents import LATENT_PAIRS, latent_metrics
from genbench.evaluation.likelihood import (
    PER_EXAMPLE_INDEX,
    PER_EXAMPLE_NLL,
    evaluate_nll,
    save_array,
)
from genbench.evaluation.mixing import MIXING_CHAINS, mixing_metrics
from genbench.evaluation.reference import RealData
from genbench.evaluation.sample_metrics import generate, score_samples
from genbench.evaluation.throughput import measure_throughput, sampling_flops

log = logging.getLogger("genbench.evaluate")


def count_params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def evaluation_seed(sample_seed: int, run_seed: int) -> int:
    """The seed of every draw one evaluation makes (samples, NLL estimators' timesteps, noise,
    probes, AIS chains, bootstrap resamples): distinct for each (eval.sample_seed, run seed), so
    runs of different seeds have independent estimator noise and the spread over seeds includes
    it; fixed given both, so a checkpoint gets the same numbers whenever it is evaluated."""
    return int(sample_seed) * 1_000_003 + int(run_seed)


class Stages:
    """Logs each stage of an evaluation as it starts and what it took, with the time so far."""

    def __init__(self, family: str):
        self.family, self.start = family, time.perf_counter()

    def __call__(self, what: str):
        log.info("evaluating %s: %s (%.0f s so far)", self.family, what, self.elapsed)
        return self

    @property
    def elapsed(self) -> float:
        return time.perf_counter() - self.start


def test_nll(module, datamodule, settings: EvalSettings, seed: int, out_dir) -> dict:
    """bits/dim on the test split (all of it, or a random eval.nll_examples of it drawn from
    eval.sample_seed: the same images for every run), the estimator's diagnostics, and
    metrics.nll_estimator (what was computed, on which images). Saves the per-example values
    and their test-split indices for paired comparisons."""
    n_test = len(datamodule.split("test")[0])
    indices = random_subset(n_test, settings.nll_examples, settings.sample_seed)
    scored = evaluate_nll(module, datamodule.eval_loader("test", indices), seed)
    per_example = scored.pop("per_example_bpd")
    scored.update(module.nll_diagnostics())
    scored["nll_estimator"] = {
        "metric": "nll_bpd",
        "estimator": module.nll_estimator(),
        "split": "test",
        "examples": len(per_example),
        "subset_seed": None if indices is None else settings.sample_seed,
    }
    if out_dir is not None:  # for paired comparisons (genbench-table compare=...)
        save_array(Path(out_dir) / PER_EXAMPLE_NLL, per_example.numpy())
        index = torch.arange(n_test) if indices is None else indices
        save_array(Path(out_dir) / PER_EXAMPLE_INDEX, index.numpy())
    return scored


def evaluate(
    module,
    datamodule,
    out_dir: str | Path | None,
    settings: EvalSettings,
    run_seed: int = 0,
) -> dict:
    """Metrics of `module` on the test split of `datamodule`, named as in results.json.

    Returns only what it computed (fidelity metrics that are undefined, e.g. IS on points, come
    back as None). The real data (RealData) is built once and shared by the sample metrics,
    memorisation and the curves: `settings.curve` maps a family to sampler settings
    [{sampler, steps}], under each of which the module's family is also scored (metrics.curve,
    see curves.score_curve). Writes `samples.png` and `nearest_neighbours.png` (the first 16
    samples beside their 3 nearest training examples) to `out_dir` when given.
    """
    s = settings
    module.eval()
    seed = evaluation_seed(s.sample_seed, run_seed)
    stage = Stages(module.family)
    metrics: dict = {"nll_kind": module.nll_kind, "params": count_params(module), "eval_seed": seed}
    if s.nll and module.nll_kind != "none":
        stage(f"test NLL ({module.nll_kind})")
        metrics.update(test_nll(module, datamodule, s, seed, out_dir))
    if s.throughput_samples > 0:
        stage(f"sampling speed ({s.throughput_samples} samples)")
    metrics.update(
        measure_throughput(
            module, s.throughput_samples, s.throughput_batch_size, s.throughput_warmup_batches, seed
        )
    )
    metrics.update(module.sampling_cost())
    if s.throughput_samples > 0:  # measured with samples/s: a re-evaluation without keeps both
        metrics.update(sampling_flops(module, seed))
    points = list((s.curve or {}).get(module.family) or []) if s.fidelity else []
    if s.fidelity:
        stage(f"{s.num_samples} samples")
        generated = generate(module, s.num_samples, s.fidelity_batch_size, seed)
        stage("sample metrics")
        real = RealData(datamodule, s, module.device)
        gen_features = real.features(generated)
        metrics.update(score_samples(generated, real, seed, gen_features))
        if hasattr(module, "chain_images"):  # a sampler of chains: how far they move
            stage(f"the sampler's mixing ({MIXING_CHAINS} chains)")
            metrics.update(mixing_metrics(module, real, seed))
        if hasattr(module, "decode_latent"):  # a latent space: how smooth its paths are
            stage(f"latent paths ({LATENT_PAIRS} pairs)")
            metrics.update(latent_metrics(module, real, seed))
        if points:
            stage(f"quality-vs-compute curve ({len(points)} sampler settings)")
            base = gen_features[real.layer]
            metrics["curve"] = score_curve(module, real, points, seed, base)
    if out_dir is not None and s.grid_samples > 0:
        gen = torch.Generator(device=module.device).manual_seed(seed)
        with torch.inference_mode():
            samples = module.sample(s.grid_samples, generator=gen)
        spec = datamodule.spec
        ref = None if spec.is_image else datamodule.split("test")[0]
        save_samples(samples, spec, Path(out_dir) / "samples.png", reference=ref)
        train = datamodule.split("train")[0]
        save_nearest_neighbours(samples[:16], train, spec, Path(out_dir) / "nearest_neighbours.png")
    log.info("evaluated %s in %.0f s", module.family, stage.elapsed)
    return metrics
