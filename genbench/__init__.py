"""genbench: benchmark deep generative model families side by side.

from genbench import load_results
df = load_results("docs/benchmark/digits/runs")   # one row per run, every metric a column
"""

__version__ = "0.1.0"


def load_results(source: str = "outputs", completed_only: bool = False):
    """Every run under `source` as a pandas DataFrame (genbench.reporting.frame.load_results)."""
    from genbench.reporting.frame import load_results as load

    return load(source, completed_only)
