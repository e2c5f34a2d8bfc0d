"""The float32 matrix-product precisions a run may set (hardware.matmul_precision): torch's
names, checked without importing torch, so the command line's check of a config stays fast
(genbench/training/speed.py sets it)."""

from __future__ import annotations

MATMUL_PRECISIONS = ("highest", "high", "medium")


def check_matmul_precision(precision: str) -> None:
    """A one-line ValueError unless `precision` is one torch.set_float32_matmul_precision takes."""
    if precision not in MATMUL_PRECISIONS:
        raise ValueError(
            f"hardware.matmul_precision={precision!r}; valid: {', '.join(MATMUL_PRECISIONS)}"
        )
