"""What the framework costs: Lightning training vs a plain PyTorch loop, and start-up time.

    make bench-overhead            (or: python scripts/bench_overhead.py --steps 300)

Training: the same VAE network, optimizer and batches, in one process with the same threads;
first through a genbench run's Lightning Trainer (our callbacks, no logger/progress bar), then in
a plain loop. Start-up: `genbench-train` from process start to its first training step, as
recorded in results.json (startup_s), plus the bare import cost of the modules it needs.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import lightning as L
import torch

from genbench.data import DigitsDataModule
from genbench.families.vae import VAE
from genbench.training.callbacks import DivergenceMonitor, RNGStateCheckpoint

ROOT = Path(__file__).resolve().parents[1]


class StepClock(L.Callback):
    def __init__(self, warmup: int):
        self.warmup, self.t0, self.t1 = warmup, None, None

    def on_train_batch_start(self, trainer, *args) -> None:
        if trainer.global_step == self.warmup:
            self.t0 = time.perf_counter()

    def on_train_end(self, trainer, *args) -> None:
        self.t1 = time.perf_counter()


def lightning_steps_per_s(steps: int, warmup: int) -> float:
    L.seed_everything(0, verbose=False)
    dm = DigitsDataModule(batch_size=64)
    module = VAE(dm.spec)
    clock = StepClock(warmup)
    trainer = L.Trainer(
        max_steps=steps + warmup,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=0,
        accelerator="cpu",
        devices=1,
        callbacks=[clock, DivergenceMonitor(), RNGStateCheckpoint()],
    )
    trainer.fit(module, datamodule=dm)
    return steps / (clock.t1 - clock.t0)


def plain_steps_per_s(steps: int, warmup: int) -> float:
    torch.manual_seed(0)
    dm = DigitsDataModule(batch_size=64)
    module = VAE(dm.spec)
    opt = module.configure_optimizers()
    loader = dm.train_dataloader()
    done, t0 = 0, None
    while done < steps + warmup:
        for x, _ in loader:
            if done == warmup:
                t0 = time.perf_counter()
            rec, kl = module.elbo_terms(x)
            loss = (kl - rec).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            done += 1
            if done == steps + warmup:
                break
    return steps / (time.perf_counter() - t0)


def import_cost_s() -> float:
    code = "import time; t=time.perf_counter(); import genbench.run; print(time.perf_counter()-t)"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    return float(out.stdout.strip())


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
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--warmup", type=int, default=20)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=2)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    light, plain = [], []
    for _ in range(a.repeats):  # interleaved, so drifting machine load hits both alike
        light.append(lightning_steps_per_s(a.steps, a.warmup))
        plain.append(plain_steps_per_s(a.steps, a.warmup))
    best_l, best_p = max(light), max(plain)
    print(f"threads={a.threads} steps={a.steps} repeats={a.repeats} (best of each)")
    print(
        f"training  lightning: {best_l:.1f} steps/s   plain torch: {best_p:.1f} steps/s   "
        f"lightning/plain = {best_l / best_p:.3f}"
    )
    print(
        f"start-up  import genbench.run: {import_cost_s():.2f} s   "
        f"genbench-train process start -> first step: {startup_s():.2f} s"
    )


if __name__ == "__main__":
    main()
