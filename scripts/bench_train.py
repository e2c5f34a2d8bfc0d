"""Training throughput per family: achieved FLOP/s and its fraction of the device's peak.

    make bench-train     (or: python scripts/bench_train.py --datasets digits mnist --out DIR)

For every family (conf/model/*.yaml) on each data set, with the model config a run of that data
set composes (conf/dataset_model/ included):
  - FLOPs per training batch: `genbench.training.budget.probe_flops`, the counter the FLOP
    budget uses (forward + backward of everything a batch does: both GAN players, the EBM's
    SGLD chains);
  - seconds per training batch: a Trainer with the run's trainer and callbacks (EMA, divergence
    monitor, progress lines; no checkpoints, loggers or validation), timed from the end of one
    batch to the end of the next over --steps batches after --warmup untimed ones (the steady
    state: data loading, the optimiser and the callbacks included, as a run pays them);
  - achieved FLOP/s = FLOPs per batch / median seconds per batch, with the interquartile range
    of the per-batch times, and its ratio to the peak.
The peak is measured in the same process at the same precision: the best of --peak-repeats
timings of a dense n x n matmul (2 n^3 FLOPs) on the same threads and device.

--profile N adds, per family, where a batch's time goes: torch.profiler over N more training
batches of the same Trainer, the operators with the most self time (share of the profiled CPU
time), and the share spent in matrix products and convolutions (the work the peak measures)
against everything else (normalisation, activations, element-wise maths, the optimiser,
Python and Lightning) -- the measured reason a family sits far under the peak.

Timings are only as good as the machine was quiet: the load average is printed with them, and
each family is measured once (its spread over batches is the interval shown).

--compare SWITCH times one of the hardware group's speed switches (fused_optimizer,
channels_last, compile; genbench/training/speed.py) instead: per family, the module with the
switch off and a second one with it on (the same seed and weights), timed in --rounds rounds,
each round timing both (the order alternating) for --steps batches after --warmup, all in one
process. A round's ratio is its median seconds per batch on / off; the report gives the median
ratio over rounds and its range, so load that drifts between rounds hits both sides of a ratio
and what is left of it shows in the range.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import sys
import time
from pathlib import Path

import lightning as L
import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from omegaconf import OmegaConf

from genbench.config import register
from genbench.families.build import build_model
from genbench.logs import quiet_library_logs
from genbench.run import build_callbacks, speed_switches
from genbench.training.budget import probe_flops

ROOT = Path(__file__).resolve().parents[1]
FAMILIES = sorted(p.stem for p in (ROOT / "conf" / "model").glob("*.yaml"))
SWITCHES = ("fused_optimizer", "channels_last", "compile")
OVERRIDES = [
    "logger=none",
    "callbacks.best_checkpoint=null",
    "callbacks.last_checkpoint=null",
    "callbacks.progress._target_=genbench.training.progress.LogProgress",
]


BENCH_DIR = "/tmp/genbench-bench-train"


def load() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.1f} (1 min) {five:.1f} (5 min) on {os.cpu_count()} CPUs"


def matmul_peak(device: str, dtype: torch.dtype, n: int, repeats: int) -> float:
    """FLOP/s of the best of `repeats` timings of an n x n matmul (2 n^3 FLOPs)."""
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    best = float("inf")
    for _ in range(repeats + 1):  # the first is a warm-up
        if device == "cuda":
            torch.cuda.synchronize()
        t = time.perf_counter()
        a @ b
        if device == "cuda":
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - t)
    return 2 * n**3 / best


# Operators that do the dense work the matmul peak measures (their self time).
DENSE_OPS = ("mm", "addmm", "bmm", "matmul", "linear", "conv", "convolution", "mkldnn")


class BatchClock(L.Callback):
    """Seconds between consecutive ends of training batches, after `warmup` batches; then,
    with `profile` > 0, torch.profiler over that many more batches."""

    def __init__(self, warmup: int, steps: int, profile: int = 0):
        self.warmup, self.stop, self.seen, self.times = warmup, warmup + steps, 0, []
        self._t: float | None = None
        self.profile, self.profiler, self.top = profile, None, None

    def on_train_batch_end(self, trainer, *args) -> None:
        if torch.cuda.is_available() and trainer.strategy.root_device.type == "cuda":
            torch.cuda.synchronize()
        now, self.seen = time.perf_counter(), self.seen + 1
        if self._t is not None and self.seen > self.warmup:
            self.times.append(now - self._t)
        self._t = now
        if self.seen == self.stop and self.profile:
            self.profiler = torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU])
            self.profiler.__enter__()
        elif self.seen >= self.stop + self.profile:
            if self.profiler is not None:
                self.profiler.__exit__(None, None, None)
                self.top = top_operators(self.profiler)
            trainer.should_stop = True


def top_operators(prof, n: int = 6) -> dict:
    """The `n` operators with the most self CPU time, as shares of all profiled self time, and
    the dense share (matrix products and convolutions)."""
    events = [e for e in prof.key_averages() if e.self_cpu_time_total > 0]
    total = sum(e.self_cpu_time_total for e in events)
    dense = sum(
        e.self_cpu_time_total
        for e in events
        if any(op in e.key.lower().removeprefix("aten::") for op in DENSE_OPS)
    )
    events.sort(key=lambda e: -e.self_cpu_time_total)
    return {
        "dense_share": dense / total,
        "top": [[e.key, e.self_cpu_time_total / total] for e in events[:n]],
    }


def timed_fit(cfg, module, dm, hardware, warmup: int, steps: int, out_dir: str, profile: int):
    """A fit of `module` with the run's trainer and callbacks under `hardware`'s speed switches
    (no checkpoints, loggers or validation) for warmup + steps (+ profile) batches: its clock."""
    clock = BatchClock(warmup, steps, profile)
    trainer = instantiate(
        cfg.trainer,
        logger=False,
        callbacks=[
            speed_switches(hardware),
            *build_callbacks(cfg.callbacks, has_logger=False),
            clock,
        ],
        max_steps=-1,
        max_epochs=-1,
        limit_val_batches=0,
        num_sanity_val_steps=0,
        enable_checkpointing=False,
        default_root_dir=out_dir,
    )
    trainer.fit(module, datamodule=dm)
    return clock


def compare_switch(cfg, switch: str, rounds: int, warmup: int, steps: int, out_dir: str) -> dict:
    """Median seconds per batch with `switch` off and on, interleaved in `rounds` rounds; the
    ratio on / off per round, its median and range."""
    arms = {}
    for on in (False, True):
        L.seed_everything(cfg.seed, verbose=False)
        dm = instantiate(cfg.dataset)
        hardware = OmegaConf.merge(cfg.hardware, {switch: on})
        arms[on] = (build_model(cfg.model, dm.spec), dm, hardware)
    times = {False: [], True: []}
    for r in range(rounds):
        for on in (False, True) if r % 2 == 0 else (True, False):
            module, dm, hardware = arms[on]
            clock = timed_fit(cfg, module, dm, hardware, warmup, steps, out_dir, 0)
            times[on].append(statistics.median(clock.times))
    ratios = [t_on / t_off for t_on, t_off in zip(times[True], times[False], strict=True)]
    return {
        "switch": switch,
        "batch_size": int(cfg.dataset.batch_size),
        "s_per_batch_off": statistics.median(times[False]),
        "s_per_batch_on": statistics.median(times[True]),
        "ratio_median": statistics.median(ratios),
        "ratio_range": [min(ratios), max(ratios)],
        "ratios": ratios,
    }


def measure(cfg, warmup: int, steps: int, out_dir: str, profile: int = 0) -> dict:
    """FLOPs per batch (the budget's probe) and the steady-state seconds per batch."""
    L.seed_everything(cfg.seed, verbose=False)
    dm = instantiate(cfg.dataset)
    module = build_model(cfg.model, dm.spec)
    accelerator = cfg.hardware.accelerator
    cost = probe_flops(
        module,
        lambda: instantiate(cfg.dataset),
        cfg.budget.probe_batches,
        accelerator=accelerator,
        precision=cfg.hardware.precision,
    )
    clock = timed_fit(cfg, module, dm, cfg.hardware, warmup, steps, out_dir, profile)
    q1, median, q3 = statistics.quantiles(clock.times, n=4)
    return {
        "flops_per_batch": cost.flops_per_batch,
        "steps_per_batch": cost.steps_per_batch,
        "batch_size": int(cfg.dataset.batch_size),
        "s_per_batch_median": median,
        "s_per_batch_iqr": [q1, q3],
        "flops_per_s": cost.flops_per_batch / median,
        "batches_timed": len(clock.times),
        **({"profile": clock.top} if clock.top else {}),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--datasets", nargs="+", default=["digits", "mnist"])
    ap.add_argument("--models", nargs="+", default=FAMILIES, choices=FAMILIES)
    ap.add_argument("--hardware", default="cpu", help="conf/hardware option (cpu, gpu)")
    ap.add_argument("--data-root", default=str(ROOT.parent / "shared" / "data"))
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--peak-n", type=int, default=None, help="matmul size (cpu 2048, gpu 8192)")
    ap.add_argument("--peak-repeats", type=int, default=10)
    ap.add_argument(
        "--profile", type=int, default=0, help="profile this many more batches per family"
    )
    ap.add_argument(
        "--compare",
        default=None,
        choices=SWITCHES,
        help="time this speed switch off against on, interleaved, instead of FLOP/s",
    )
    ap.add_argument("--rounds", type=int, default=6, help="--compare: rounds of off and on")
    ap.add_argument("--out", default=None, help="folder for bench_train.json and .md")
    args = ap.parse_args()
    logging.disable(logging.WARNING)
    quiet_library_logs()
    register()
    rows, peak = [], None
    with initialize_config_dir(version_base="1.3", config_dir=str(ROOT / "conf")):
        for dataset in args.datasets:
            extra = [f"dataset.root={args.data_root}"] if dataset == "mnist" else []
            if dataset == "mnist" and not (Path(args.data_root) / "MNIST" / "raw").is_dir():
                print(f"skipping mnist: no {args.data_root}/MNIST/raw (--data-root)")
                continue
            for model in args.models:
                cfg = compose(
                    "train",
                    overrides=[
                        f"model={model}",
                        f"dataset={dataset}",
                        f"hardware={args.hardware}",
                        *OVERRIDES,
                        *extra,
                    ],
                )
                if args.compare:
                    torch.set_num_threads(cfg.hardware.threads or torch.get_num_threads())
                    row = {
                        "dataset": dataset,
                        "model": model,
                        **compare_switch(
                            cfg, args.compare, args.rounds, args.warmup, args.steps, BENCH_DIR
                        ),
                    }
                    rows.append(row)
                    print(f"{dataset:7s} {model:14s} {compare_line(row)}; {load()}", flush=True)
                    continue
                if peak is None:
                    torch.set_num_threads(cfg.hardware.threads or torch.get_num_threads())
                    device = "cuda" if cfg.hardware.accelerator == "gpu" else "cpu"
                    dtype = (
                        torch.bfloat16 if "bf16" in str(cfg.hardware.precision) else torch.float32
                    )
                    n = args.peak_n or (8192 if device == "cuda" else 2048)
                    peak = {
                        "flops_per_s": matmul_peak(device, dtype, n, args.peak_repeats),
                        "n": n,
                        "dtype": str(dtype),
                        "device": device,
                        "threads": torch.get_num_threads(),
                        "precision": str(cfg.hardware.precision),
                    }
                    print(
                        f"peak: {peak['flops_per_s'] / 1e9:.1f} GFLOP/s ({n}x{n} {dtype} matmul, "
                        f"{peak['threads']} threads); {load()}"
                    )
                row = {
                    "dataset": dataset,
                    "model": model,
                    **measure(cfg, args.warmup, args.steps, BENCH_DIR, args.profile),
                }
                row["fraction_of_peak"] = row["flops_per_s"] / peak["flops_per_s"]
                rows.append(row)
                print(
                    f"{dataset:7s} {model:14s} {row['flops_per_batch'] / 1e9:9.2f} GFLOP/batch "
                    f"{1e3 * row['s_per_batch_median']:8.1f} ms/batch "
                    f"{row['flops_per_s'] / 1e9:7.2f} GFLOP/s "
                    f"{100 * row['fraction_of_peak']:5.1f}% of peak; {load()}",
                    flush=True,
                )
                if "profile" in row:
                    print("    " + profile_line(row["profile"]), flush=True)
    report = {
        "command": " ".join(["python scripts/bench_train.py", *sys.argv[1:]]),
        "device": torch.cuda.get_device_name()
        if args.hardware != "cpu" and torch.cuda.is_available()
        else f"{os.cpu_count()} CPUs",
        "torch": torch.__version__,
        "date": time.strftime("%Y-%m-%d"),
        "peak": peak,
        "rows": rows,
    }
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "bench_train.json").write_text(json.dumps(report, indent=1) + "\n")
        (out / "bench_train.md").write_text(
            compare_markdown(report) if args.compare else markdown(report)
        )
        print(f"wrote {out}/bench_train.json and .md")


def compare_line(row: dict) -> str:
    lo, hi = row["ratio_range"]
    return (
        f"{row['switch']} off {1e3 * row['s_per_batch_off']:.1f} ms/batch, on "
        f"{1e3 * row['s_per_batch_on']:.1f} ms/batch: on/off {row['ratio_median']:.3f} "
        f"[{lo:.3f}, {hi:.3f}] over {len(row['ratios'])} rounds"
    )


def md_table(caption: str, columns: list[str], rows: list[list[str]]) -> list[str]:
    """A caption paragraph, then a Markdown table of `rows` (cells already formatted)."""
    lines = [caption, "", "| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    return lines + ["| " + " | ".join(cells) + " |" for cells in rows]


def compare_markdown(report: dict) -> str:
    caption = (
        f"Speed switch, `{report['command']}` ({report['date']}, {report['device']}, torch "
        f"{report['torch']}): median seconds per batch off and on, and the ratio on / off per "
        "round (median [min, max] over rounds; below 1: faster with the switch)."
    )
    columns = ["data", "family", "batch", "ms/batch off", "ms/batch on", "on / off [range]"]
    rows = [
        [
            r["dataset"],
            r["model"],
            str(r["batch_size"]),
            f"{1e3 * r['s_per_batch_off']:.1f}",
            f"{1e3 * r['s_per_batch_on']:.1f}",
            f"{r['ratio_median']:.3f} [{r['ratio_range'][0]:.3f}, {r['ratio_range'][1]:.3f}]",
        ]
        for r in report["rows"]
    ]
    return "\n".join(md_table(caption, columns, rows)) + "\n"


def profile_line(profile: dict) -> str:
    ops = ", ".join(f"{name} {100 * share:.0f}%" for name, share in profile["top"])
    return f"dense ops {100 * profile['dense_share']:.0f}% of self time; top: {ops}"


def markdown(report: dict) -> str:
    peak = report["peak"]
    caption = (
        f"Training throughput, `{report['command']}` ({report['date']}, {report['device']}, "
        f"torch {report['torch']}). Peak: {peak['flops_per_s'] / 1e9:.1f} GFLOP/s, the best "
        f"{peak['n']}x{peak['n']} {peak['dtype']} matmul on {peak['threads']} threads."
    )
    columns = ["data", "family", "batch", "GFLOP per batch", "ms per batch (median [IQR])"]
    columns += ["GFLOP/s", "of peak"]
    rows = [
        [
            r["dataset"],
            r["model"],
            str(r["batch_size"]),
            f"{r['flops_per_batch'] / 1e9:.3g}",
            f"{1e3 * r['s_per_batch_median']:.1f} "
            f"[{1e3 * r['s_per_batch_iqr'][0]:.1f}, {1e3 * r['s_per_batch_iqr'][1]:.1f}]",
            f"{r['flops_per_s'] / 1e9:.2f}",
            f"{100 * r['fraction_of_peak']:.1f}%",
        ]
        for r in report["rows"]
    ]
    lines = md_table(caption, columns, rows)
    profiled = [r for r in report["rows"] if "profile" in r]
    if profiled:
        lines += ["", "Where a batch's time goes (torch.profiler, self CPU time):", ""]
        lines += [f"- {r['dataset']} {r['model']}: {profile_line(r['profile'])}" for r in profiled]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
