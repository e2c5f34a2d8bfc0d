"""Installable: a built wheel gives working CLIs (configs inside the package). A family from the
user's own package: tests/test_own_model.py."""

from __future__ import annotations

import os
import site
import subprocess
import sys
import zipfile
from pathlib import Path

from genbench.core.results import read_results

ROOT = Path(__file__).resolve().parents[1]
SMOKE = ["trainer=fast", "eval=fast", "logger=none", "callbacks=quiet"]


def _ok(proc: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert proc.returncode == 0, (proc.args, proc.stdout[-1500:], proc.stderr[-3000:])
    return proc


def test_wheel_in_a_fresh_venv_gives_working_clis(tmp_path):
    """pip install of the built wheel (not editable) into a new venv whose only other packages
    are genbench's dependencies; the CLIs run from an unrelated folder."""
    dist = tmp_path / "dist"
    _ok(
        subprocess.run(
            [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation"]
            + ["-w", str(dist), str(ROOT)],
            capture_output=True,
            text=True,
            timeout=300,
        )
    )
    (wheel,) = dist.glob("genbench-*.whl")
    with zipfile.ZipFile(wheel) as whl:  # the licence travels with the package
        metadata = whl.read("genbench-0.1.0.dist-info/METADATA").decode()
        assert "License-Expression: MIT" in metadata.splitlines()
        assert (
            whl.read("genbench-0.1.0.dist-info/licenses/LICENSE") == (ROOT / "LICENSE").read_bytes()
        )
    venv = tmp_path / "venv"
    _ok(subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], timeout=120))
    # The dependencies from this environment's site-packages, by a plain path entry: its .pth
    # files (among them the editable install of genbench) are not processed from there.
    (new_site,) = (venv / "lib").glob("python3*/site-packages")
    deps = [p for p in site.getsitepackages() if p.endswith("site-packages")]
    (new_site / "genbench_deps.pth").write_text("\n".join(deps) + "\n")
    _ok(
        subprocess.run(
            [sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python")]
            + ["install", "-q", "--no-deps", str(wheel)],
            capture_output=True,
            text=True,
            timeout=300,
        )
    )
    bin_dir, work = venv / "bin", tmp_path / "elsewhere"
    work.mkdir()
    env = {**os.environ, "PYTHONPATH": ""}

    def cli(*args: str) -> subprocess.CompletedProcess:
        return _ok(
            subprocess.run(args, cwd=work, capture_output=True, text=True, timeout=600, env=env)
        )

    where = cli(str(bin_dir / "python"), "-c", "import genbench; print(genbench.__file__)")
    assert where.stdout.strip().startswith(str(venv)), where.stdout  # the wheel, not this tree
    run_dir = work / "run"
    cli(
        str(bin_dir / "genbench-train"),
        "model=vae",
        "dataset=moons",
        "model.iw_samples=4",
        *SMOKE,
        f"hydra.run.dir={run_dir}",
    )
    assert read_results(run_dir / "results.json")["status"] == "completed"
    (best,) = (run_dir / "checkpoints").glob("best_step*.ckpt")  # no '=' in the name
    cli(str(bin_dir / "genbench-eval"), f"ckpt={best}", "eval=fast", f"hydra.run.dir={work}/ev")
    assert read_results(run_dir / "results.json")["evaluated_checkpoint"] == best.name
    out = cli(str(bin_dir / "genbench-table"), f"source={run_dir}")
    assert "| vae | vae | moons |" in out.stdout
