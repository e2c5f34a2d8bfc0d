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


def genbench_here(app: str, *args: str) -> subprocess.CompletedProcess:
    """`genbench-<app> args` run in this process through the console script's own `main()`: the
    same argument checks, Hydra composition, run and exit code as `genbench()`, without the ~6 s
    a new interpreter spends importing torch and Lightning. For tests whose subject is what a
    command computes, writes or refuses; `genbench()` where it is the process itself (signals,
    what a fresh interpreter prints, console scripts on PATH, another working directory or
    environment). Hydra's logging handlers (the console and the run's .log file) are removed
    afterwards, so later tests' logs do not land in this run's files."""
    import contextlib
    import importlib
    import io
    import logging
    import traceback

    main = importlib.import_module(f"genbench.{app}").main
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    out, err, argv = io.StringIO(), io.StringIO(), sys.argv
    sys.argv = [f"genbench-{app}", *args]
    code = 0
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                main()
            except SystemExit as e:  # as the interpreter ends: sys.exit("text") prints it
                code = e.code if isinstance(e.code, int) else int(e.code is not None)
                if e.code is not None and not isinstance(e.code, int):
                    print(e.code, file=sys.stderr)
            except Exception:  # what the interpreter would print, and its exit status
                traceback.print_exc()
                code = 1
    finally:
        sys.argv = argv
        for h in list(root.handlers):
            if h not in handlers:
                root.removeHandler(h)
                h.close()
        for h in handlers:
            if h not in root.handlers:
                root.addHandler(h)
        root.setLevel(level)
    command = [f"genbench-{app}", *args]
    return subprocess.CompletedProcess(command, code, out.getvalue(), err.getvalue())
