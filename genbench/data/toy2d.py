"""2-D toy densities with fixed-seed samplers (moons, 8 gaussians, checkerboard, 2 spirals)."""

from __future__ import annotations

import math

import numpy as np
from sklearn.datasets import make_moons


def _moons(n: int, rng: np.random.Generator) -> np.ndarray:
    x, _ = make_moons(n_samples=n, noise=0.05, random_state=int(rng.integers(2**31)))
    return (x - np.array([0.5, 0.25])) * 2.0


def _eight_gaussians(n: int, rng: np.random.Generator) -> np.ndarray:
    angles = 2 * math.pi * rng.integers(0, 8, n) / 8
    centers = 2.0 * np.stack([np.cos(angles), np.sin(angles)], axis=1)
    return centers + 0.15 * rng.standard_normal((n, 2))


def _checkerboard(n: int, rng: np.random.Generator) -> np.ndarray:
    x1 = rng.uniform(-2, 2, n)
    x2 = rng.uniform(0, 1, n) + rng.integers(0, 2, n) - 2.0
    x2 = x2 + (np.floor(x1) % 2)
    return np.stack([x1, x2], axis=1) * 1.0


def _spirals(n: int, rng: np.random.Generator) -> np.ndarray:
    t = np.sqrt(rng.uniform(0, 1, n)) * 3 * math.pi
    sign = np.where(rng.integers(0, 2, n) == 0, 1.0, -1.0)
    r = t / (3 * math.pi) * 3.0
    x = np.stack([sign * r * np.cos(t), sign * r * np.sin(t)], axis=1)
    return x + 0.08 * rng.standard_normal((n, 2))


TOY_DENSITIES = {
    "moons": _moons,
    "8gaussians": _eight_gaussians,
    "checkerboard": _checkerboard,
    "spirals": _spirals,
}

# The 8 mode centres, for mode-coverage counts on 8 gaussians.
EIGHT_GAUSSIAN_CENTERS = 2.0 * np.stack(
    [np.cos(2 * np.pi * np.arange(8) / 8), np.sin(2 * np.pi * np.arange(8) / 8)], axis=1
)


def sample_toy(name: str, n: int, seed: int) -> np.ndarray:
    """n points of density `name` as float32 (n, 2), reproducible from `seed`."""
    if name not in TOY_DENSITIES:
        raise ValueError(f"unknown toy density {name!r}; valid: {sorted(TOY_DENSITIES)}")
    return TOY_DENSITIES[name](n, np.random.default_rng(seed)).astype(np.float32)
