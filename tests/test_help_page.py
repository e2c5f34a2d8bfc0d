"""Each console script's --help: its own keys, and examples that compose."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest
import yaml

from genbench.cli import command_line_problem
from tests.commands import genbench_here as genbench

ROOT = Path(__file__).resolve().parents[1]
APPS = ["train", "eval", "table"]
# The keys each command reads of its own (issue 34: the eval and table pages listed none).
OWN_KEYS = {
    "train": ["seed", "ckpt_path"],
    "eval": ["ckpt", "samples", "name", "floor", "baseline", "data_root"],
    "table": ["source", "out_dir", "compare", "export_runs", "wandb_report"],
}


def help_text(app: str) -> str:
    out = genbench(app, "--help")
    assert out.returncode == 0, out.stderr
    return out.stdout


def examples(text: str, app: str) -> list[list[str]]:
    """The example commands on the page, as argv (after the '#' comment: what it does)."""
    lines = [ln.strip() for ln in text.splitlines() if ln.startswith(f"  genbench-{app} ")]
    return [shlex.split(ln, comments=True)[1:] for ln in lines]


@pytest.mark.parametrize("app", APPS)
def test_each_help_lists_its_own_keys_and_every_settable_key_of_its_config(app):
    text = help_text(app)
    keys_part = text.split("Keys (key=default):\n", 1)[1].split("\n\n", 1)[0]
    listed = [ln.split()[0].split("=", 1)[0] for ln in keys_part.splitlines()]
    assert set(OWN_KEYS[app]) <= set(listed), listed
    conf = yaml.safe_load((ROOT / "conf" / f"{app}.yaml").read_text())
    settable = [k for k, v in conf.items() if k not in ("defaults", "hydra")]
    internal = {k for k in settable if str(conf[k]).startswith("${hydra:")}  # Hydra sets them
    assert sorted(listed) == sorted(set(settable) - internal)
    assert len(examples(text, app)) == 3
    if app != "train":
        assert "model:" not in text and "budget" not in text  # not the training page's


@pytest.mark.parametrize("app", APPS)
def test_every_example_in_each_help_composes(app):
    """A sweep's jobs are composed one by one (Hydra's --cfg refuses -m); any other example runs
    with --cfg job, through the same checks a real command gets."""
    for argv in examples(help_text(app), app):
        overrides = [a for a in argv if a != "-m"]
        if "-m" in argv:
            assert command_line_problem(app, overrides, multirun=True) is None, argv
            continue
        out = genbench(app, *argv, "--cfg", "job")
        assert out.returncode == 0, (argv, out.stderr[-2000:])
        config = yaml.safe_load(out.stdout)
        for override in overrides:  # each example's keys reach the composed config
            key, value = override.split("=", 1)
            if "." in key and not key.startswith("hydra."):
                node = config
                for part in key.split("."):
                    node = node[part]
                assert str(node) == value or float(node) == float(value), (key, node)
