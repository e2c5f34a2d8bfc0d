"""No default written twice: a keyword default in genbench/ whose parameter is named like a key
of some conf/**/*.yaml is a second, silent source of that setting (measure_throughput's
num_samples=256 stood beside eval.throughput_samples: 512), so every function takes such a
setting as a required argument or takes the settings object. The few parameters that share a
name with a YAML key by accident are listed below, each with why."""

from __future__ import annotations

import ast
from pathlib import Path

from omegaconf import OmegaConf

from tests.conftest import CONF_DIR

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "genbench"

# (file, function's qualified name) -> (its parameters whose default stays, why). Not a setting
# of the YAML: a name the YAML also uses for something else.
ALLOWED = {
    ("genbench/core/loop_progress.py", "Progress.__init__"): (
        ("every_s",),
        "the evaluation loops' log interval; callbacks.progress.every_s is the training bar's",
    ),
    ("genbench/evaluation/classifier.py", "train_classifier"): (
        ("seed", "batch_size", "lr", "weight_decay"),
        "the feature classifier's own recipe (its shipped weights' hashes); the YAML's are a run's",
    ),
    ("genbench/reporting/scaling_fits.py", "bootstrap_fits"): (
        ("seed",),
        "the scaling fits' resampling seed; genbench-table has no seed, the YAML's is a run's",
    ),
}


def yaml_keys() -> set[str]:
    """Every key at any depth of every file under conf/."""
    keys: set[str] = set()
    for path in sorted(Path(CONF_DIR).rglob("*.yaml")):
        stack = [OmegaConf.to_container(OmegaConf.load(path), resolve=False)]
        while stack:
            node = stack.pop()
            if isinstance(node, dict):
                keys |= {str(k) for k in node}
                stack += list(node.values())
            elif isinstance(node, list):
                stack += node
    return keys


def keyword_defaults(tree: ast.Module):
    """(qualified function name, parameter, default node) of every parameter with a default
    that is not None, in every function, method and lambda of a module."""
    found = []

    def visit(node: ast.AST, scope: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.ClassDef):
                visit(child, f"{scope}{child.name}.")
            elif isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
                name = f"{scope}{getattr(child, 'name', '<lambda>')}"
                a = child.args
                positional = a.posonlyargs + a.args
                pairs = list(zip(positional[len(positional) - len(a.defaults) :], a.defaults))
                pairs += [(p, d) for p, d in zip(a.kwonlyargs, a.kw_defaults) if d is not None]
                for param, default in pairs:
                    if not (isinstance(default, ast.Constant) and default.value is None):
                        found.append((name, param.arg, default))
                visit(child, f"{name}.")
            else:
                visit(child, scope)

    visit(tree, "")
    return found


def shadowing_defaults() -> list[tuple[str, str, str, int, str]]:
    """(file, function, parameter, line, default) of every keyword default in genbench/ whose
    parameter is a YAML key."""
    keys = yaml_keys()
    out = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        for function, param, default in keyword_defaults(ast.parse(path.read_text())):
            if param in keys:
                out.append((rel, function, param, default.lineno, ast.unparse(default)))
    return out


def test_no_function_in_genbench_has_a_default_for_a_yaml_setting():
    offenders = [
        f"{rel}:{line}:{function}({param}={default})"
        for rel, function, param, line, default in shadowing_defaults()
        if param not in ALLOWED.get((rel, function), ((),))[0]
    ]
    assert offenders == [], (
        "keyword defaults that repeat a YAML setting (take it as a required argument, or the "
        "settings object; or, for a name shared by accident, add it to ALLOWED with why):\n"
        + "\n".join(offenders)
    )


def test_every_allowed_default_still_exists():
    """The allow-list stays as short as the code: an entry whose default is gone goes too."""
    present = {(rel, function, param) for rel, function, param, _, _ in shadowing_defaults()}
    stale = [
        f"{rel}::{function}({param})"
        for (rel, function), (params, _) in ALLOWED.items()
        for param in params
        if (rel, function, param) not in present
    ]
    assert stale == [], stale


def test_the_walk_finds_a_default_of_each_kind():
    """The walker sees positional, keyword-only and method defaults and skips None."""
    code = (
        "def f(a, num_samples=1, *, seed=2, cache_dir=None): ...\n"
        "class C:\n"
        "    def __init__(self, batch_size=3): ...\n"
    )
    found = {(f, p, ast.unparse(d)) for f, p, d in keyword_defaults(ast.parse(code))}
    assert found == {
        ("f", "num_samples", "1"),
        ("f", "seed", "2"),
        ("C.__init__", "batch_size", "3"),
    }
    assert {"num_samples", "seed", "batch_size", "cache_dir"} <= yaml_keys()
