"""Fixed-step ODE solvers for dx/dt = v(x, t) on a time grid of [0, 1], either way.

Each solver is a `Sampler` (samplers/base.py): `model_fn(x, t)` is the velocity v at the float
time t, and a step of size h = t_next - t (negative when integrating from 1 to 0) advances x.
Two-stage solvers list each stage as its own timestep and keep the first stage's state between
calls, as diffusers' HeunDiscreteScheduler does, so `nfe` (= len(timesteps)) counts network
calls honestly:

    Euler     x' = x + h v(x, t)                                       1 call per step, order 1
    Heun      d1 = v(x, t); d2 = v(x + h d1, t + h); x' = x + h (d1 + d2) / 2
                                                                        2 calls per step, order 2
    midpoint  d1 = v(x, t); x' = x + h v(x + h d1 / 2, t + h / 2)      2 calls per step, order 2

The grid is uniform (rho = 1), or graded polynomially towards one end `fine_at` (t_start or
t_end): the distance of the i-th of N boundaries from that end is |t_end - t_start| (i/N)^rho
counted from it, so with rho > 1 the steps shrink there (Karras et al., 2022's rho schedule).
A velocity that is stiff near one end (a flow's data end, where it resolves fine detail) keeps
the solver's order on such a grid; on a uniform one the last steps' error dominates.

The state x may be any tensor (e.g. (B, C, H, W) images, or (B, D + 1) for an augmented
[x, log-density] state): every update is an elementwise linear combination.
"""

from __future__ import annotations

import torch
from torch import Tensor

from genbench.samplers.base import Rng, Sampler


class ODESolver(Sampler):
    """A fixed-step solver from `t_start` to `t_end` (both in [0, 1]) over `set_timesteps(n)`
    steps, uniform or graded with exponent `rho` towards `fine_at`; `timesteps` lists the float
    times of its network calls in order."""

    stages: int = 1

    def __init__(
        self, t_start: float, t_end: float, rho: float = 1.0, fine_at: float | None = None
    ):
        super().__init__()
        for name, value in (("t_start", t_start), ("t_end", t_end)):
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name}={value} must be in [0, 1]")
        if t_start == t_end:
            raise ValueError(f"t_start = t_end = {t_start}: an empty time interval")
        if rho < 1.0:
            raise ValueError(f"rho={rho} must be >= 1 (1: a uniform grid)")
        if rho != 1.0 and fine_at not in (t_start, t_end):
            raise ValueError(f"fine_at={fine_at}; valid with rho={rho}: {t_start} or {t_end}")
        self.t_start, self.t_end = float(t_start), float(t_end)
        self.rho, self.fine_at = float(rho), fine_at
        self.num_steps = 0
        self.grid: list[float] = []  # the num_steps + 1 step boundaries, t_start .. t_end
        self._call = 0  # index of the next call in `timesteps`

    def set_timesteps(self, num_steps: int) -> None:
        if num_steps < 1:
            raise ValueError(f"num_steps={num_steps} must be >= 1")
        self.num_steps = num_steps
        span, n = self.t_end - self.t_start, num_steps
        if self.rho == 1.0:
            grid = [self.t_start + span * i / n for i in range(n)]
        elif self.fine_at == self.t_start:
            grid = [self.t_start + span * (i / n) ** self.rho for i in range(n)]
        else:
            grid = [self.t_end - span * (1 - i / n) ** self.rho for i in range(n)]
        self.grid = grid + [self.t_end]
        self.timesteps = [t for i in range(num_steps) for t in self.stage_times(i)]
        self._call = 0

    def stage_times(self, i: int) -> list[float]:
        """The times of step i's network calls (one per stage)."""
        return [self.grid[i]]

    def step(self, model_output: Tensor, t, x: Tensor, generator: Rng = None) -> Tensor:
        if not self.timesteps:
            raise RuntimeError(f"{type(self).__name__}: call set_timesteps(num_steps) first")
        i, stage = divmod(self._call, self.stages)
        self._call = (self._call + 1) % len(self.timesteps)  # the next run starts afresh
        return self.update(model_output, x, i, stage)

    def update(self, d: torch.Tensor, x: torch.Tensor, i: int, stage: int) -> torch.Tensor:
        """The state after stage `stage` of step i, given the velocity d at that stage."""
        raise NotImplementedError

    def step_size(self, i: int) -> float:
        return self.grid[i + 1] - self.grid[i]


class Euler(ODESolver):
    name = "Euler"

    def update(self, d: torch.Tensor, x: torch.Tensor, i: int, stage: int) -> torch.Tensor:
        return x + self.step_size(i) * d


class Heun(ODESolver):
    """Heun's method (explicit trapezoidal rule): a Euler predictor, then the mean slope."""

    name = "Heun"
    stages = 2

    def stage_times(self, i: int) -> list[float]:
        return [self.grid[i], self.grid[i + 1]]

    def update(self, d: torch.Tensor, x: torch.Tensor, i: int, stage: int) -> torch.Tensor:
        h = self.step_size(i)
        if stage == 0:  # x is x_i: keep it and its slope, return the predictor
            self._x, self._d1 = x, d
            return x + h * d
        x_i, d1 = self._x, self._d1
        self._x = self._d1 = None
        return x_i + 0.5 * h * (d1 + d)


class Midpoint(ODESolver):
    """The explicit midpoint rule: a half Euler step, then a full step with the midpoint slope."""

    name = "Midpoint"
    stages = 2

    def stage_times(self, i: int) -> list[float]:
        return [self.grid[i], 0.5 * (self.grid[i] + self.grid[i + 1])]

    def update(self, d: torch.Tensor, x: torch.Tensor, i: int, stage: int) -> torch.Tensor:
        h = self.step_size(i)
        if stage == 0:
            self._x = x
            return x + 0.5 * h * d
        x_i = self._x
        self._x = None
        return x_i + h * d


SOLVERS: dict[str, type[ODESolver]] = {"euler": Euler, "heun": Heun, "midpoint": Midpoint}


def make_solver(
    name: str,
    num_steps: int,
    t_start: float,
    t_end: float,
    rho: float = 1.0,
    fine_at: float | None = None,
) -> ODESolver:
    """The solver `name` ("euler" | "heun" | "midpoint") with `num_steps` steps, ready to run."""
    if name not in SOLVERS:
        raise ValueError(f"ODE solver {name!r}; valid: {sorted(SOLVERS)}")
    solver = SOLVERS[name](t_start, t_end, rho, fine_at)
    solver.set_timesteps(num_steps)
    return solver
