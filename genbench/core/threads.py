"""One place that sizes a process's thread pools."""

from __future__ import annotations

import torch


def limit_threads(n: int | None) -> None:
    """Size every thread pool of this process to `n`: torch's intra-op pool and, through
    threadpoolctl, the BLAS and OpenMP pools that numpy, SciPy and scikit-learn use (left
    uncapped, each takes every core, and processes run side by side oversubscribe the machine).
    None leaves them as they are."""
    if not n:
        return
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(int(n))
    threadpool_limits(limits=int(n))
