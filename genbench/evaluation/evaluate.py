"""evaluate(): the family-agnostic evaluation stage. It only calls the GenerativeModule API."""

from __future__ import annotations

from pathlib import Path

import torch

from genbench.evaluation.fidelity import evaluate_curve, evaluate_fidelity
from genbench.evaluation.images import save_nearest_neighbours, save_samples
from genbench.evaluation.likelihood import PER_EXAMPLE_NLL, evaluate_nll, save_array
from genbench.evaluation.throughput import measure_throughput


def count_params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def evaluation_seed(sample_seed: int, run_seed: int) -> int:
    """The seed of every draw one evaluation makes (samples, NLL estimators' timesteps, noise,
    probes, AIS chains, bootstrap resamples): distinct for each (eval.sample_seed, run seed), so
    runs of different seeds have independent estimator noise and the spread over seeds includes
    it; fixed given both, so a checkpoint gets the same numbers whenever it is evaluated."""
    return int(sample_seed) * 1_000_003 + int(run_seed)


def evaluate(
    module,
    datamodule,
    out_dir: str | Path | None = None,
    *,
    nll: bool = True,
    nll_max_batches: int | None = None,
    sample_seed: int = 0,
    run_seed: int = 0,
    grid_samples: int = 64,
    throughput_samples: int = 512,
    throughput_batch_size: int = 256,
    throughput_warmup_batches: int = 1,
    fidelity: bool = True,
    num_samples: int = 1000,
    fidelity_batch_size: int = 256,
    kid_subsets: int = 100,
    kid_subset_size: int = 1000,
    isc_splits: int = 10,
    prc_neighborhood: int = 3,
    bootstrap_resamples: int = 1000,
    ci_level: float = 0.95,
    ci_method: str = "normal",
    density_coverage_k: int = 5,
    memorisation: bool = True,
    memorisation_pixels: bool = True,
    copy_percentile: float = 1.0,
    ct_cells: int = 10,
    ct_min_generated: int = 20,
    max_reference_samples: int | None = None,
    max_train_samples: int | None = None,
    cache_dir: str | Path = "~/.cache/genbench",
    inception_weights: str | None = None,
    inception_download: bool = True,
    curve: dict | None = None,
    **unused,
) -> dict:
    """Metrics of `module` on the test split of `datamodule`, named as in results.json.

    Returns only what it computed (fidelity metrics that are undefined, e.g. IS on points, come
    back as None). `curve` maps a family to sampler settings [{sampler, steps}]: the module's
    family is also scored under each (metrics.curve, see fidelity.evaluate_curve). Writes
    `samples.png` and `nearest_neighbours.png` (the first 16 of those samples beside their 3
    nearest training examples) to `out_dir` when given.
    """
    module.eval()
    seed = evaluation_seed(sample_seed, run_seed)
    metrics: dict = {"nll_kind": module.nll_kind, "params": count_params(module), "eval_seed": seed}
    if nll and module.nll_kind != "none":
        scored = evaluate_nll(module, datamodule.test_dataloader(), nll_max_batches, seed)
        per_example = scored.pop("per_example_bpd")
        metrics.update(scored)
        metrics.update(module.nll_diagnostics())
        if out_dir is not None:  # for paired comparisons (genbench-table compare=...)
            save_array(Path(out_dir) / PER_EXAMPLE_NLL, per_example.numpy())
    metrics.update(
        measure_throughput(
            module,
            throughput_samples,
            throughput_batch_size,
            throughput_warmup_batches,
            seed=seed,
        )
    )
    metrics.update(module.sampling_cost())
    if fidelity:
        metrics.update(
            evaluate_fidelity(
                module,
                datamodule,
                num_samples=num_samples,
                batch_size=fidelity_batch_size,
                seed=seed,
                cache_dir=cache_dir,
                inception_weights=inception_weights,
                inception_download=inception_download,
                max_reference_samples=max_reference_samples,
                max_train_samples=max_train_samples,
                kid_subsets=kid_subsets,
                kid_subset_size=kid_subset_size,
                isc_splits=isc_splits,
                prc_neighborhood=prc_neighborhood,
                bootstrap_resamples=bootstrap_resamples,
                ci_level=ci_level,
                ci_method=ci_method,
                density_coverage_k=density_coverage_k,
                memorisation=memorisation,
                memorisation_pixels=memorisation_pixels,
                copy_percentile=copy_percentile,
                ct_cells=ct_cells,
                ct_min_generated=ct_min_generated,
            )
        )
    settings = list((curve or {}).get(module.family) or [])
    if fidelity and settings:
        metrics["curve"] = evaluate_curve(
            module,
            datamodule,
            settings,
            num_samples=num_samples,
            batch_size=fidelity_batch_size,
            seed=seed,
            throughput_samples=throughput_samples,
            throughput_batch_size=throughput_batch_size,
            throughput_warmup_batches=throughput_warmup_batches,
            cache_dir=cache_dir,
            inception_weights=inception_weights,
            inception_download=inception_download,
            max_reference_samples=max_reference_samples,
            bootstrap_resamples=bootstrap_resamples,
            ci_level=ci_level,
            ci_method=ci_method,
        )
    if out_dir is not None and grid_samples > 0:
        gen = torch.Generator(device=module.device).manual_seed(seed)
        with torch.inference_mode():
            samples = module.sample(grid_samples, generator=gen)
        spec = datamodule.spec
        ref = None if spec.is_image else datamodule.split("test")[0]
        save_samples(samples, spec, Path(out_dir) / "samples.png", reference=ref)
        train = datamodule.split("train")[0]
        save_nearest_neighbours(samples[:16], train, spec, Path(out_dir) / "nearest_neighbours.png")
    return metrics
