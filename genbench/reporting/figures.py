"""What every plot of the table and the scaling report shares: pyplot on a file backend, the
markers of an NLL's kind, a log-scale x axis with a grid, and writing a figure to its file."""

from __future__ import annotations

from pathlib import Path

# The marker of a bits/dim point by what it is: exact, a bound, an estimate of no direction.
KIND_MARKERS = {"exact": "o", "bound": "s", "estimate": "^"}


def pyplot():
    """matplotlib's pyplot on the Agg backend (files, no display), imported on first use: a
    table or report that draws nothing does not pay for the import."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def log_x_axis(ax, xlabel: str, ylabel: str) -> None:
    """A log-scale x axis, both labels and a light grid."""
    ax.set(xscale="log", xlabel=xlabel, ylabel=ylabel)
    ax.grid(alpha=0.3)


def save(fig, path: str | Path, title: str | None = None) -> Path:
    """`fig` under `title` (over all its axes), laid out and written to `path` (its folder made
    where missing), then closed."""
    path = Path(path)
    if title is not None:
        fig.suptitle(title)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    pyplot().close(fig)
    return path
