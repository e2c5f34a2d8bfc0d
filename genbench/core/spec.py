"""What a family learns about its data: shape, kind and number of levels."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class DataSpec:
    """shape: (C, H, W) for images or (D,) for points; num_levels: K (None if continuous)."""

    name: str
    kind: str  # "image" | "points"
    shape: tuple[int, ...]
    num_levels: int | None

    def __post_init__(self) -> None:
        if self.kind not in ("image", "points"):
            raise ValueError(f"DataSpec.kind={self.kind!r}; valid: 'image', 'points'")
        if self.kind == "image" and (self.num_levels is None or len(self.shape) != 3):
            raise ValueError(f"image DataSpec needs shape (C,H,W) and num_levels, got {self}")

    @property
    def num_dims(self) -> int:
        """D, the number of dimensions bits/dim divides by."""
        return math.prod(self.shape)

    @property
    def is_image(self) -> bool:
        return self.kind == "image"

    def to_dict(self) -> dict:
        return asdict(self)
