"""A user's own model and data without editing genbench (docs/own_model.md): the example package
examples/own_model (a GenerativeModule subclass, its YAML, a Hydra search-path plugin), copied
outside the repository and put on PYTHONPATH, trained, evaluated and re-evaluated by the stock
CLIs, and swept by model=glob(*); an image folder of the user's PNGs as a data set."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from genbench.core.results import read_results
from tests.commands import genbench, genbench_here, smoke

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "own_model"
SMOKE = smoke()
FAMILIES = ("arm", "diffusion", "ebm", "flow", "flow_matching", "gan", "vae")


def _cli(app: str, *args: str, pythonpath: list[Path] = ()) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(map(str, pythonpath))}
    out = genbench(app, *args, env=env)
    assert out.returncode == 0, (args, out.stdout[-1500:], out.stderr[-3000:])
    return out


@pytest.fixture(scope="module")
def user(tmp_path_factory) -> dict[str, Path]:
    """The example's package and its plugin in two folders outside the repository, so that a
    test puts on the path the package alone or both."""
    root = tmp_path_factory.mktemp("user")
    shutil.copytree(EXAMPLE / "my_families", root / "package" / "my_families")
    shutil.copytree(EXAMPLE / "hydra_plugins", root / "plugin" / "hydra_plugins")
    return {
        "package": root / "package",
        "plugin": root / "plugin",
        "conf": root / "package" / "my_families" / "conf",
        "root": root,
    }


def _here(app: str, *args: str) -> subprocess.CompletedProcess:
    out = genbench_here(app, *args)
    assert out.returncode == 0, (args, out.stdout[-1500:], out.stderr[-3000:])
    return out


def test_a_users_model_is_trained_evaluated_and_reevaluated_by_the_stock_clis(user, monkeypatch):
    """hydra.searchpath names the user's config folder; genbench-eval needs only the package
    (importable: on sys.path here, as PYTHONPATH puts it; the commands run in this process)."""
    monkeypatch.syspath_prepend(str(user["package"]))
    run_dir = user["root"] / "run"
    _here(
        "train",
        "model=diag_gaussian",
        "dataset=moons",
        *SMOKE,
        f"hydra.searchpath=[file://{user['conf']}]",
        f"hydra.run.dir={run_dir}",
    )
    rec = read_results(run_dir / "results.json")
    assert rec["status"] == "completed" and rec["family"] == "diag_gaussian"
    assert rec["model"] == "diag_gaussian" and rec["metrics"]["nll_kind"] == "exact"
    assert rec["metrics"]["train_steps"] == 20
    for key in ("nll_bpd", "fid", "precision", "samples_per_s"):  # evaluated as any family
        assert rec["metrics"][key] is not None, key

    (best,) = (run_dir / "checkpoints").glob("best_step*.ckpt")
    ev = [f"ckpt={best}", "eval=fast", "eval.num_samples=50", f"hydra.run.dir={run_dir}/ev"]
    _here("eval", *ev)
    again = read_results(run_dir / "results.json")
    assert again["metrics"]["fidelity_num_samples"] == 50 and again["eval_model_changes"] == {}
    assert again["history"][0]["metrics"] == rec["metrics"]


def test_a_users_model_with_its_plugin_is_an_option_and_in_a_sweeps_glob(user, tmp_path):
    """With the search-path plugin installed, model=diag_gaussian needs no hydra.searchpath, and
    model=glob(*) sweeps it beside genbench's families (Hydra 1.3's glob does not see
    hydra.searchpath=[...] additions). The sweep's jobs stop at once on a checkpoint that does
    not exist, after each has built its model: the sweep itself is what is tested."""
    path = [user["package"], user["plugin"]]
    cfg = _cli("train", "model=diag_gaussian", "dataset=moons", "--cfg", "job", pythonpath=path)
    assert "_target_: my_families.gaussian.DiagonalGaussian" in cfg.stdout
    sweep = _cli(
        "train",
        "-m",
        "model=glob(*)",
        "dataset=moons",
        "logger=none",
        f"ckpt_path={tmp_path / 'none.ckpt'}",
        f"hydra.sweep.dir={tmp_path / 'sweep'}",
        pythonpath=path,
    )
    launched = sweep.stdout + sweep.stderr
    assert "Launching 8 jobs" in launched
    jobs = {p.parent.name: read_results(p) for p in (tmp_path / "sweep").rglob("results.json")}
    assert set(jobs) == {f"{m}_moons_seed0" for m in (*FAMILIES, "diag_gaussian")}
    mine = jobs["diag_gaussian_moons_seed0"]
    assert mine["family"] == "diag_gaussian" and "none.ckpt' does not exist" in mine["error"]


def test_an_image_folder_of_the_users_pngs_is_a_data_set(tmp_path):
    """root/<class>/<image>.png, as torchvision's ImageFolder reads it; the classifier extractor
    (trained on the folder's classes on first use) instead of InceptionV3, whose weights a
    machine without network may lack."""
    from PIL import Image

    rng = np.random.default_rng(0)
    for label, rows in (("stripes", slice(None, None, 2)), ("plain", slice(0, 0))):
        folder = tmp_path / "images" / label
        folder.mkdir(parents=True)
        for i in range(100):
            x = rng.integers(0, 60, (8, 8))
            x[rows] += 180
            Image.fromarray(x.astype(np.uint8)).save(folder / f"{i:03d}.png")
    run_dir = tmp_path / "run"
    data = [
        "dataset=image_folder",
        f"dataset.root={tmp_path / 'images'}",
        "dataset.image_size=8",
        "dataset.channels=1",
        "dataset.feature_extractor=classifier",
    ]
    vae = ["model=vae", "model.iw_samples=16"]  # the data set is the subject, not the estimate
    _here("train", *vae, *data, *SMOKE, f"hydra.run.dir={run_dir}")
    rec = read_results(run_dir / "results.json")
    assert rec["status"] == "completed" and rec["dataset"] == "image_folder"
    assert rec["metrics"]["fidelity_extractor"] == "classifier"
    assert rec["metrics"]["nll_bpd"] is not None and rec["metrics"]["fid"] is not None
    assert rec["metrics"]["classes_covered"] is not None  # the folder's two classes
