"""The console scripts' --help pages: what the command does, three examples, its own keys and
the config groups it picks from. A key's line comes from conf/<app>.yaml, where the comment on
the key's own line describes it (the one place it is described); a top-level key without one
(model_name, output_dir, ...) is internal and not listed. tests/test_help.py composes every
example."""

from __future__ import annotations

import re
import sys
import textwrap
from pathlib import Path

CONF = Path(__file__).parent / "conf"
# The config groups a user picks (conf/<group>/); schema/, hydra/, paths/ and dataset_model/
# are internal. experiment and hparams_search are added with a '+'.
USER_GROUPS = {
    "train": ("model", "dataset", "hardware", "budget", "trainer", "eval", "logger", "callbacks"),
    "eval": ("dataset", "hardware", "eval"),
    "table": (),
}
SWEEP_GROUPS = {"train": ("experiment", "hparams_search"), "eval": (), "table": ()}
# `key: default   # what it is` at the top level of a YAML file.
KEY_LINE = re.compile(r"^(\w+):\s*(.*?)\s+#\s*(.+)$")
ENV_DEFAULT = re.compile(r"\$\{oc\.env:(\w+),([^}]*)\}")  # ${oc.env:X,d} -> $X (else d)


def group_options(group: str) -> list[str]:
    """The options of conf/<group>/ (sub-folders as a/b); for callbacks, the presets (files with
    a defaults list), not the one-callback files they compose."""
    root = CONF / group
    files = sorted(root.rglob("*.yaml"))
    if group == "callbacks":
        files = [f for f in files if "defaults:" in f.read_text()]
    return [str(f.relative_to(root).with_suffix("")) for f in files]


def own_keys(app: str) -> list[tuple[str, str, str]]:
    """(key, default, what it is) of each top-level key of conf/<app>.yaml described on its
    line."""
    lines = (CONF / f"{app}.yaml").read_text().splitlines()
    matches = [m.groups() for m in map(KEY_LINE.match, lines) if m]
    return [(k, ENV_DEFAULT.sub(r"$\1 (else \2)", v), what) for k, v, what in matches]


def help_page(app: str, description: str, examples: list[str], notes: list[str]) -> str:
    """The page: `description`, the `examples` (a command, then '#' and what it does), the
    app's own keys, its config groups, then `notes`."""
    lines = textwrap.wrap(f"genbench-{app}: {description}", 100, subsequent_indent="  ")
    lines += ["", "Examples:", *(f"  {e}" for e in examples), "", "Keys (key=default):"]
    keys = [(f"{k}={v}", what) for k, v, what in own_keys(app)]
    width = max(len(k) for k, _ in keys) + 2
    lines += [f"  {k:<{width}}{what}" for k, what in keys]
    if USER_GROUPS[app]:
        added = " and ".join(f"+{g}=option" for g in SWEEP_GROUPS[app])
        lines += ["", "Config groups (group=option" + (f"; {added}" if added else "") + "):"]
        groups = USER_GROUPS[app] + SWEEP_GROUPS[app]
        lines += [f"  {g}: {', '.join(group_options(g))}" for g in groups]
    return "\n".join([*lines, "", *notes])


def maybe_help(app: str, description: str, examples: list[str], notes: list[str]) -> None:
    """Print genbench's help page and exit when --help or -h is the request."""
    if any(a in ("--help", "-h") for a in sys.argv[1:]):
        print(help_page(app, description, examples, notes))
        sys.exit(0)
