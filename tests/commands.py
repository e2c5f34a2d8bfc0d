"""genbench's commands run from a test as a user runs them, and the smoke presets."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def smoke(logger: str = "none") -> list[str]:
    """The smoke presets: the shortest trainer and evaluation, `logger`, no optional callbacks."""
    return ["trainer=fast", "eval=fast", f"logger={logger}", "callbacks=quiet"]


def genbench(
    app: str, *args: str, timeout: float = 600, cwd: Path = ROOT, env: dict | None = None
) -> subprocess.CompletedProcess:
    """`genbench-<app> args` (as `python -m genbench.<app>` with this interpreter) from `cwd`,
    its output captured as text."""
    return subprocess.run(
        [sys.executable, "-m", f"genbench.{app}", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )
