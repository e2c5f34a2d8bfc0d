"""What the framework costs: Lightning through genbench vs a plain PyTorch loop, and start-up.

    make bench-overhead            (or: python scripts/bench_overhead.py --pairs 10 --steps 300)

Training. The digits VAE of conf/model/vae.yaml, its optimiser, the same batches (the data
module's epoch-seeded loader) and the same threads, two ways:
  A  Lightning as `genbench-train` builds it: the Trainer from conf/trainer (log_every_n_steps
     and all), the run's callbacks from conf/callbacks (EMA, divergence monitor, RNG state,
     first-step timer, sample checks, the off-terminal progress lines), checkpoints and
     loggers off, no validation;
  B  a plain loop doing the same maths: the ELBO loss, backward, the optimiser step and the
     same EMA update (torch's AveragedModel with genbench's warm-up decay).
Each of --pairs pairs builds both afresh from the same seed and, after --warmup steps each,
runs them in alternating blocks of --block steps inside one process (B's block runs from a
callback of A's Trainer, outside A's clock) until each has done --steps: load that drifts over
seconds hits both alike. Reported: the per-pair time ratios A/B, their median with a
distribution-free 95% interval (order statistics of the median), and a profile (cProfile) of
A vs B over --profile-steps steps: self time per step by package, A's framework functions
with the most self time, and the hooks with the most cumulative time.

Start-up. `genbench-train` (trainer=fast eval=fast logger=none callbacks=quiet) from process
start to its first training step, as recorded in results.json (startup_s), and what
`import genbench.run` costs, by top-level package (python -X importtime).

Timings are only as good as the machine was quiet: the load average is printed with them.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import logging
import math
import os
import pstats
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import lightning as L
import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from torch.optim.swa_utils import AveragedModel

from genbench.config import register
from genbench.families.build import build_model
from genbench.logs import quiet_library_logs
from genbench.run import build_callbacks
from genbench.training.ema import warmup_ema

ROOT = Path(__file__).resolve().parents[1]
# The run's callbacks (conf/callbacks/default.yaml) without checkpoints; the progress callback
# as it is off a terminal (a Rich bar on one), so the measurement does not depend on where it
# runs. No logger: the LR monitor drops out, as in a run without one.
OVERRIDES = [
    "model=vae",
    "dataset=digits",
    "logger=none",
    "callbacks.best_checkpoint=null",
    "callbacks.last_checkpoint=null",
    "callbacks.progress._target_=genbench.training.progress.LogProgress",
]


def load() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.1f} (1 min) {five:.1f} (5 min) on {os.cpu_count()} CPUs"


def build(cfg):
    """A fresh (module, datamodule) from the same seed."""
    L.seed_everything(cfg.seed, verbose=False)
    dm = instantiate(cfg.dataset)
    return build_model(cfg.model, dm.spec), dm


class PlainLoop:
    """Side B: its own module, optimiser, EMA and loader, stepped on demand."""

    def __init__(self, cfg):
        if cfg.model.kl_warmup_steps:
            raise ValueError("the plain loop's loss is the ELBO with beta = 1 (kl_warmup_steps: 0)")
        self.module, dm = build(cfg)
        self.module.train()
        self.opt = self.module.configure_optimizers()
        decay = cfg.callbacks.ema.decay
        self.ema = AveragedModel(self.module, use_buffers=False, multi_avg_fn=warmup_ema(decay))
        dm.setup("fit")
        self.loader = dm.train_dataloader()
        self.batches = self._batches()

    def _batches(self):
        while True:  # epochs: each pass over the loader draws that pass's permutation
            for x, _ in self.loader:
                yield x

    def run(self, steps: int) -> float:
        """Seconds for `steps` training steps."""
        t = time.perf_counter()
        for _ in range(steps):
            x = next(self.batches)
            rec, kl = self.module.elbo_terms(x)
            loss = (kl - rec).mean()
            self.opt.zero_grad(set_to_none=True)
            loss.backward()
            self.opt.step()
            self.ema.update_parameters(self.module)
        return time.perf_counter() - t


class Interleave(L.Callback):
    """Times side A (this Trainer) and side B (a PlainLoop) in alternating blocks of `block`
    steps, from step `warmup` to `warmup + steps`: at every block boundary A's block just
    ended (on_train_batch_end, after every other callback) and B runs its block, so load that
    drifts over seconds hits both alike. With a profiler, only A's steps are profiled."""

    def __init__(self, plain: PlainLoop | None, warmup: int, steps: int, block: int, profiler=None):
        self.plain, self.warmup, self.stop, self.block = plain, warmup, warmup + steps, block
        self.profiler = profiler
        self.lightning_s = self.plain_s = 0.0
        self._t = math.nan

    def on_train_batch_end(self, trainer, *args) -> None:
        step = trainer.global_step
        if step < self.warmup or (step - self.warmup) % self.block and step != self.stop:
            return
        now = time.perf_counter()
        if self.profiler:
            self.profiler.disable()
        if step > self.warmup:
            self.lightning_s += now - self._t
        elif self.plain:
            self.plain.run(self.warmup)  # B's warm-up, untimed
        if step < self.stop:
            if self.plain:
                self.plain_s += self.plain.run(min(self.block, self.stop - step))
            if self.profiler:
                self.profiler.enable()
            self._t = time.perf_counter()


def lightning_fit(cfg, callback: Interleave, out_dir: str) -> None:
    """Side A: a Trainer and callbacks as `genbench-train` builds them, plus `callback`."""
    module, dm = build(cfg)
    trainer = instantiate(
        cfg.trainer,
        logger=False,
        callbacks=[*build_callbacks(cfg.callbacks, has_logger=False), callback],
        max_steps=callback.stop,
        limit_val_batches=0,
        num_sanity_val_steps=0,
        enable_checkpointing=False,
        default_root_dir=out_dir,
    )
    trainer.fit(module, datamodule=dm)


def timed_pair(cfg, steps: int, warmup: int, block: int, out_dir: str) -> tuple[float, float]:
    """Seconds of A and of B for `steps` steps each, interleaved in blocks."""
    clock = Interleave(PlainLoop(cfg), warmup, steps, block)
    lightning_fit(cfg, clock, out_dir)
    return clock.lightning_s, clock.plain_s


def median_interval(values: list[float], level: float = 0.95) -> tuple[float, float, float]:
    """Distribution-free interval for the median: order statistics (k, n + 1 - k) with the
    largest k such that P(Binomial(n, 1/2) < k) <= (1 - level) / 2; returns (low, high, actual
    coverage). Needs n >= 6 for 95%."""
    n, xs = len(values), sorted(values)
    tail = [math.comb(n, i) / 2**n for i in range(n + 1)]
    k = 0
    while k + 1 <= n and sum(tail[: k + 1]) <= (1 - level) / 2:
        k += 1
    if k == 0:
        return math.nan, math.nan, math.nan
    return xs[k - 1], xs[n - k], 1 - 2 * sum(tail[:k])


def package(filename: str) -> str:
    """Whose code a profile entry is: a top-level package, or the C extensions' compute."""
    if filename == "~":
        return "builtin (torch ops, C)"
    for name in ("lightning", "torchmetrics", "genbench", "torch", "hydra", "omegaconf"):
        if f"/{name}/" in filename:
            return name
    return "other python"


def print_profile(cfg, steps: int, warmup: int, out_dir: str, top: int) -> None:
    """cProfile of both sides over `steps` steps after `warmup` (the steady state only)."""
    prof_a, prof_b = cProfile.Profile(), cProfile.Profile()
    clock = Interleave(None, warmup, steps, steps, prof_a)
    lightning_fit(cfg, clock, out_dir)
    plain = PlainLoop(cfg)
    plain.run(warmup)
    prof_b.enable()
    b_s = plain.run(steps)
    prof_b.disable()
    a, b, n = pstats.Stats(prof_a), pstats.Stats(prof_b), steps
    print(f"profile (cProfile over {n} steps after {warmup}; cProfile slows Python calls)")
    print(
        f"  wall per step: lightning {1e3 * clock.lightning_s / n:.2f} ms, "
        f"plain {1e3 * b_s / n:.2f} ms"
    )
    by_pkg: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])
    for col, stats in enumerate((a, b)):
        for (filename, _, _), (_, _, tottime, _, _) in stats.stats.items():
            by_pkg[package(filename)][col] += tottime
    print("| self time per step (ms) | lightning | plain | difference |")
    print("|---|---|---|---|")
    for name, (ta, tb) in sorted(by_pkg.items(), key=lambda kv: -abs(kv[1][0] - kv[1][1])):
        print(f"| {name} | {1e3 * ta / n:.3f} | {1e3 * tb / n:.3f} | {1e3 * (ta - tb) / n:+.3f} |")
    rows = [
        (tottime, calls, filename, line, func)
        for (filename, line, func), (_, calls, tottime, _, _) in a.stats.items()
        if package(filename) in ("lightning", "genbench", "torchmetrics")
    ]
    print(f"lightning side: the {top} framework functions with the most self time")
    print("| function | calls per step | self us per step |")
    print("|---|---|---|")
    for tottime, calls, filename, line, func in sorted(rows, reverse=True)[:top]:
        where = filename.split("site-packages/")[-1].split("/genbench/")[-1]
        print(f"| {func} ({where}:{line}) | {calls / n:.1f} | {1e6 * tottime / n:.1f} |")
    hooks = [
        (ct, calls, filename, func)
        for (filename, _, func), (_, calls, _, ct, _) in a.stats.items()
        if func.startswith("on_") and package(filename) in ("lightning", "genbench")
    ]
    print("lightning side: callback and module hooks with the most cumulative time")
    print("| hook | calls per step | cumulative us per step |")
    print("|---|---|---|")
    for ct, calls, filename, func in sorted(hooks, reverse=True)[:top]:
        where = filename.split("site-packages/")[-1].split("/genbench/")[-1]
        print(f"| {func} ({where}) | {calls / n:.2f} | {1e6 * ct / n:.1f} |")


def import_costs(top: int) -> tuple[float, list[tuple[str, float]]]:
    """Wall seconds of `import genbench.run` in a fresh process, and the import time of the
    biggest top-level packages: the self time of their modules, summed (python -X importtime)."""
    code = "import time; t=time.perf_counter(); import genbench.run; print(time.perf_counter()-t)"
    out = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    by_pkg: dict[str, float] = defaultdict(float)
    for row in out.stderr.splitlines():
        fields = row.removeprefix("import time:").split("|")
        if len(fields) != 3 or not fields[0].strip().isdigit():
            continue  # the header line
        by_pkg[fields[2].strip().split(".")[0]] += int(fields[0]) / 1e6
    biggest = sorted(by_pkg.items(), key=lambda kv: -kv[1])[:top]
    return float(out.stdout.strip()), biggest


def startup_s() -> float:
    with tempfile.TemporaryDirectory() as d:
        subprocess.run(
            [
                sys.executable,
                "-m",
                "genbench.train",
                "trainer=fast",
                "eval=fast",
                "logger=none",
                "callbacks=quiet",
                f"hydra.run.dir={d}",
            ],
            cwd=ROOT,
            check=True,
            capture_output=True,
        )
        return json.loads((Path(d) / "results.json").read_text())["startup_s"]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--pairs", type=int, default=10)
    p.add_argument("--steps", type=int, default=300, help="timed optimiser steps per run")
    p.add_argument("--warmup", type=int, default=20)
    p.add_argument("--block", type=int, default=10, help="steps per interleaved block")
    p.add_argument("--profile-steps", type=int, default=200, help="0 skips the profile")
    p.add_argument("--top", type=int, default=15)
    p.add_argument("--startup-repeats", type=int, default=3, help="0 skips start-up")
    p.add_argument("--threads", type=int, default=2)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    register()
    with initialize_config_dir(version_base="1.3", config_dir=str(ROOT / "conf")):
        cfg = compose("train", overrides=OVERRIDES)
    quiet_library_logs()
    for name in ("lightning.pytorch", "lightning.fabric"):  # its INFO lines, at every fit
        logging.getLogger(name).setLevel(logging.WARNING)
    print(f"threads={a.threads} steps={a.steps} warmup={a.warmup} pairs={a.pairs}; {load()}")
    ratios = []
    with tempfile.TemporaryDirectory() as out_dir:
        for i in range(a.pairs):
            t_a, t_b = timed_pair(cfg, a.steps, a.warmup, a.block, out_dir)
            ratios.append(t_a / t_b)
            print(
                f"pair {i + 1}: lightning {a.steps / t_a:.1f} steps/s, plain {a.steps / t_b:.1f} "
                f"steps/s, time ratio {t_a / t_b:.3f}",
                flush=True,
            )
        low, high, coverage = median_interval(ratios)
        print(
            f"training: lightning/plain time per step, median {statistics.median(ratios):.3f} "
            f"({100 * coverage:.1f}% interval [{low:.3f}, {high:.3f}], {a.pairs} pairs); "
            f"target <= 1.05; {load()}",
            flush=True,
        )
        if a.profile_steps > 0:
            print_profile(cfg, a.profile_steps, a.warmup, out_dir, a.top)
    if a.startup_repeats > 0:
        total, biggest = import_costs(a.top)
        print(f"start-up: import genbench.run {total:.2f} s; cumulative import time by package:")
        print("  " + ", ".join(f"{name} {s:.2f} s" for name, s in biggest))
        starts = [startup_s() for _ in range(a.startup_repeats)]
        print(
            f"start-up: genbench-train process start -> first training step: median "
            f"{statistics.median(starts):.2f} s, max {max(starts):.2f} s over {len(starts)} "
            f"(limit 5 s); {load()}"
        )


if __name__ == "__main__":
    main()
