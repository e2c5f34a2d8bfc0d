"""The distributed path on CPU: two gloo processes train, evaluate and reduce metrics correctly."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from genbench.data import DigitsDataModule
from genbench.evaluation.likelihood import evaluate_nll
from genbench.families.base import GenerativeModule

ROOT = Path(__file__).resolve().parents[1]


class PixelSumModel(GenerativeModule):
    """A deterministic per-example 'NLL' that differs across examples (for reduction checks)."""

    family = "test"
    nll_kind = "exact"

    def __init__(self, spec):
        super().__init__(spec)
        self.scale = torch.nn.Parameter(torch.tensor(0.05))

    def nll(self, batch):
        x = self.data(batch).float().flatten(1)
        return self.spec.num_dims * math.log(self.spec.num_levels) + self.scale * x.sum(1)


def _worker(rank: int, world: int, port: int, out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    torch.set_num_threads(1)
    dm = DigitsDataModule(eval_batch_size=100)
    result = evaluate_nll(PixelSumModel(dm.spec), dm.test_dataloader())
    result["per_example_bpd"] = result["per_example_bpd"].tolist()
    if rank == 0:
        Path(out).write_text(json.dumps(result))
    dist.destroy_process_group()


def test_sharded_nll_reduces_to_single_process_value(tmp_path):
    dm = DigitsDataModule(eval_batch_size=100)
    single = evaluate_nll(PixelSumModel(dm.spec), dm.test_dataloader())
    out = tmp_path / "ddp.json"
    port = 29500 + os.getpid() % 1000
    mp.spawn(_worker, args=(2, port, str(out)), nprocs=2, join=True)
    both = json.loads(out.read_text())  # 447 examples: shards of 224 and 223
    assert abs(both["nll_bpd"] - single["nll_bpd"]) < 1e-9
    assert abs(both["nll_bpd_stderr"] - single["nll_bpd_stderr"]) < 1e-9
    # Per-example values come back from both ranks in the test split's order.
    assert len(both["per_example_bpd"]) == 447
    assert both["per_example_bpd"] == single["per_example_bpd"].tolist()


def test_ddp_cpu_run_end_to_end_rank_zero_writes(tmp_path):
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "genbench.train",
            "hardware=ddp_cpu",
            "model=arm",
            "dataset=digits",
            "trainer=fast",
            "eval=fast",
            "eval.nll_max_batches=null",
            "eval.fidelity=false",
            "logger=csv",
            "callbacks=quiet",
            f"hydra.run.dir={tmp_path}",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    record = json.loads((tmp_path / "results.json").read_text())
    assert record["status"] == "completed"
    assert record["config"]["hardware"]["devices"] == 2
    assert record["metrics"]["train_steps"] == 20
    assert len(list(tmp_path.rglob("results.json"))) == 1
    assert len(list(tmp_path.rglob("metrics.csv"))) == 1  # rank 0 alone logs
    # The ARM's NLL is exact and deterministic: the two ranks' shards, reduced, must give the
    # single-process value on the same weights.
    from genbench.families.arm import ARM

    name = record["evaluated_checkpoint"]
    ckpt = torch.load(
        tmp_path / "checkpoints" / ("last.ckpt" if name == "last" else name), weights_only=False
    )
    module = ARM(**ckpt["hyper_parameters"])
    module.load_state_dict(ckpt["state_dict"])
    single = evaluate_nll(module.eval(), DigitsDataModule().test_dataloader())
    assert abs(single["nll_bpd"] - record["metrics"]["nll_bpd"]) < 1e-6
