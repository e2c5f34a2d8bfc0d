"""What the console scripts do before Hydra takes over: their own --help page, and a one-line
error with the nearest valid key for a misspelt override (Hydra would suggest appending it with
'+')."""

from __future__ import annotations

import difflib
import sys
from pathlib import Path

from omegaconf import DictConfig

# The config groups a user picks (conf/<group>/); schema/, hydra/, paths/ and dataset_model/
# are internal.
USER_GROUPS = {
    "train": ("model", "dataset", "hardware", "budget", "trainer", "eval", "logger", "callbacks"),
    "eval": ("dataset", "hardware", "eval"),
    "table": (),
}
SWEEP_GROUPS = ("experiment", "hparams_search")  # added with +group=option


def group_options(group: str) -> list[str]:
    """The options of conf/<group>/ (sub-folders as a/b), from the package's config folder;
    for callbacks, the presets (files with a defaults list), not the one-callback files they
    compose."""
    root = Path(__file__).parent / "conf" / group
    files = sorted(root.rglob("*.yaml"))
    if group == "callbacks":
        files = [f for f in files if "defaults:" in f.read_text()]
    return [str(f.relative_to(root).with_suffix("")) for f in files]


def help_page(app: str, description: str, examples: list[str]) -> str:
    lines = [f"genbench-{app}: {description}", "", "Examples:"]
    lines += [f"  {e}" for e in examples]
    groups = USER_GROUPS[app] + (SWEEP_GROUPS if app == "train" else ())
    if groups:
        lines += ["", "Config groups (group=option; experiment and hparams_search take a '+'):"]
        for g in groups:
            lines.append(f"  {g}: {', '.join(group_options(g))}")
        if "callbacks" in groups:
            lines.append("  (one callback off: callbacks.<name>=null, e.g. callbacks.ema=null)")
    lines += [
        "",
        "Any key can be set on the command line (model.lr=1e-3, eval.num_samples=5000); print",
        f"the composed config with `genbench-{app} --cfg job`. -m runs a sweep (seed=0,1,2).",
        "Hydra's own flags: --hydra-help. Shell completion (bash): "
        f'eval "$(genbench-{app} -sc install=bash)".',
    ]
    return "\n".join(lines)


def maybe_help(app: str, description: str, examples: list[str]) -> None:
    """Print genbench's help page and exit when --help or -h is the request."""
    if any(a in ("--help", "-h") for a in sys.argv[1:]):
        print(help_page(app, description, examples))
        sys.exit(0)


def check_override_keys(config_name: str, argv: list[str] | None = None) -> None:
    """Compose the config once with the command line's group choices and check every dotted
    override's key (model.latent_dim=..., not +model.x or hydra.*): a key the composed config
    does not have ends the command in one line naming the nearest key that exists (exit 2).
    Anything this cannot check (sweeps, globs, interpolations) is left to Hydra."""
    from hydra import compose, initialize_config_module
    from hydra.core.global_hydra import GlobalHydra

    args = [
        a for a in (sys.argv[1:] if argv is None else argv) if "=" in a and not a.startswith("-")
    ]
    choices, dotted = [], []
    for a in args:
        key, value = a.split("=", 1)
        if key.startswith(("~", "hydra.", "hydra/", "+hydra")):
            continue
        if key.startswith("+"):  # +experiment=... is a choice; +model.x=... adds a key
            if "." not in key and "," not in value and "(" not in value:
                choices.append(a)
            continue
        if "." in key:
            dotted.append(key)
        elif "," not in value and "glob(" not in value and "(" not in value:
            choices.append(a)
    if not dotted:
        return
    if GlobalHydra.instance().is_initialized():
        GlobalHydra.instance().clear()
    try:
        with initialize_config_module("genbench.conf", version_base="1.3"):
            cfg = compose(config_name, overrides=choices)
    except Exception:
        return  # Hydra will say what is wrong with the choices themselves
    finally:
        GlobalHydra.instance().clear()
    for key in dotted:
        problem = _missing_key(cfg, key)
        if problem:
            print(f"genbench-{config_name}: error: {problem}", file=sys.stderr)
            sys.exit(2)


def _missing_key(cfg: DictConfig, key: str) -> str | None:
    node, path = cfg, []
    for part in key.split("."):
        if not isinstance(node, DictConfig):
            return None  # a list or a value: not a key path this can check
        if part not in node:
            keys = [str(k) for k in node.keys()]
            near = difflib.get_close_matches(part, keys, n=1)
            where = ".".join(path) or "the config"
            hint = f"; did you mean {'.'.join([*path, near[0]])}?" if near else ""
            valid = f" (valid: {', '.join(sorted(keys))})" if not near and len(keys) <= 40 else ""
            return f"{key} is not a key of {where}{hint}{valid}"
        node, path = node[part], [*path, part]
    return None
