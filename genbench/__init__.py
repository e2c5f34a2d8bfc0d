"""genbench: benchmark deep generative model families side by side.

from genbench import load_results, expand
df = load_results("docs/benchmark/digits/runs")   # one row per run, every metric a column
curves = expand(df, "curve")                       # one row per point of each sampler curve
"""

__version__ = "0.1.0"

# Imported on first use, so `import genbench` stays light (no pandas, torch or W&B), and a
# warning of load_results points at the caller's line, not at a wrapper here.
_LAZY = {"load_results": "genbench.reporting.frame", "expand": "genbench.reporting.frame"}


def __getattr__(name: str):
    if name in _LAZY:
        from importlib import import_module

        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'genbench' has no attribute {name!r}")
