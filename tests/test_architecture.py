"""The layers of docs/architecture.md, checked by import-linter (the contracts are in
pyproject.toml), and the design document kept true to the files it names."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "architecture.md"


def test_layers_import_downward_only():
    lint = Path(sys.executable).parent / "lint-imports"
    out = subprocess.run([str(lint), "--no-cache"], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stdout[-3000:]
    assert "3 kept, 0 broken" in out.stdout


def test_the_design_document_names_files_that_exist_and_every_layer():
    text = DOC.read_text()
    named = set(re.findall(r"`((?:genbench|conf|tests)/[\w/.<>-]+)`", text))
    concrete = [p for p in named if "<" not in p]
    assert len(concrete) > 20
    missing = [p for p in concrete if not (ROOT / p).exists()]
    assert not missing, missing
    contracts = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    layers = next(c for c in contracts["contracts"] if c["type"] == "layers")["layers"]
    for layer in layers:
        for module in (m.strip() for m in layer.split("|")):
            assert f"genbench/{module}" in text, module


def test_a_new_family_is_under_the_family_contracts_without_editing_them(tmp_path):
    """The contracts name genbench.families.* (not a list to keep up to date): a family file
    added to a copy of the package that imports another family, or an evaluation module that
    imports it, breaks them there."""
    shutil.copytree(ROOT / "genbench", tmp_path / "genbench")
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    (tmp_path / "genbench/families/newfamily.py").write_text(
        "from genbench.families.vae import VAE\n"
    )
    (tmp_path / "genbench/evaluation/uses_newfamily.py").write_text(
        "from genbench.families.newfamily import VAE\n"
    )
    lint = Path(sys.executable).parent / "lint-imports"
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    out = subprocess.run(
        [str(lint), "--no-cache"], cwd=tmp_path, capture_output=True, text=True, env=env
    )
    assert "families are independent of each other BROKEN" in out.stdout, out.stdout[-2000:]
    assert "evaluation imports no concrete family BROKEN" in out.stdout, out.stdout[-2000:]
    assert "genbench.families.newfamily is not allowed to import genbench.families.vae" in (
        out.stdout
    )
