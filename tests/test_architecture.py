"""The layers of docs/architecture.md, checked by import-linter (the contracts are in
pyproject.toml), and the design document kept true to the files it names."""

from __future__ import annotations

import re
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


def test_the_family_contracts_cover_every_family_module():
    """A family added to genbench/families/ must join the independence and evaluation contracts
    (import-linter has no 'every module but these' form): the lists equal the family files."""
    infrastructure = {"__init__", "base", "build"}
    families = sorted(
        f"genbench.families.{p.stem}"
        for p in (ROOT / "genbench" / "families").glob("*.py")
        if p.stem not in infrastructure
    )
    assert len(families) >= 7
    contracts = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    by_name = {c["name"]: c for c in contracts["contracts"]}
    independent = by_name["families are independent of each other"]["modules"]
    forbidden = by_name["evaluation imports no concrete family"]["forbidden_modules"]
    hint = "add the new family to both family contracts in pyproject.toml"
    assert sorted(independent) == families, hint
    assert sorted(forbidden) == families, hint
