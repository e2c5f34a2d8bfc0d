"""What the console scripts do before Hydra takes over: every command line is composed, job by
job, and checked, so that a mistake ends the command in one line naming the bad key or value and
what is valid (exit 2), before any run folder exists and before anything trains. Hydra would
print several lines, suggest '+key=' for a misspelt key (a key nothing reads), and refuse a
value only where a schema types it (`seed=abc` failed inside the run, `eval.num_samples=-5`
after training)."""

from __future__ import annotations

import difflib
import functools
import shlex
import sys
from contextlib import contextmanager

from omegaconf import DictConfig
from omegaconf.errors import OmegaConfBaseException

from genbench.config import check_config

# What OmegaConf puts before the message of an error a resolver raised.
RESOLVER_RAISED = "ValueError raised while resolving interpolation: "
# Hydra flags after which nothing composes a job (or that pick another config).
NO_CHECK_FLAGS = {
    "--hydra-help",
    "--version",
    "-sc",
    "--shell-completion",
    "-i",
    "--info",
    "-cp",
    "--config-path",
    "-cn",
    "--config-name",
    "-cd",
    "--config-dir",
}


def check_command_line(app: str, argv: list[str] | None = None) -> None:
    """Compose the app's config with the command line's overrides (each job of a sweep, one
    sweep value at a time) and check it: a problem ends the command in one line (exit 2)."""
    argv = sys.argv[1:] if argv is None else argv
    args = [a for a in argv if ("=" in a or a.startswith("~")) and not a.startswith("-")]
    if not args or NO_CHECK_FLAGS & set(argv):
        return
    problem = command_line_problem(app, args, multirun=bool({"-m", "--multirun"} & set(argv)))
    if problem:
        print(f"genbench-{app}: error: {problem}", file=sys.stderr)
        sys.exit(2)


@contextmanager
def _hydra():
    """Hydra initialised on genbench's configs; yields the config loader."""
    from hydra import initialize_config_module
    from hydra.core.global_hydra import GlobalHydra

    GlobalHydra.instance().clear()
    try:
        with initialize_config_module("genbench.conf", version_base="1.3"):
            yield GlobalHydra.instance().config_loader()
    finally:
        GlobalHydra.instance().clear()


def command_line_problem(app: str, args: list[str], multirun: bool = False) -> str | None:
    """One line saying what is wrong with the overrides `args` of genbench-<app> (run with -m
    when `multirun`), or None."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    with _hydra() as loader:
        try:
            parsed = OverridesParser.create(config_loader=loader).parse_overrides(args)
        except HydraException as e:  # Hydra's grammar: its message points at the character
            bad = getattr(e, "override", None)
            if bad is None or "=" not in bad:
                return _one_line(e)
            key, value = bad.split("=", 1)
            return f"cannot parse {bad} (Hydra's override grammar); quote it: '{key}=\"{value}\"'"
        _compose.cache_clear()  # files may have changed since the last call
        try:
            return _unasked_sweep(app, parsed, multirun) or _sweep_problem(app, parsed, loader)
        finally:
            _compose.cache_clear()


def _sweep_problem(app: str, parsed, loader) -> str | None:
    jobs = _jobs(app, parsed)
    for job in jobs:
        problem = _job_problem(app, job, parsed, loader)
        if problem:
            sweep_values = [o for o in job if o not in _fixed(parsed)]
            where = f" (the sweep's job {' '.join(sweep_values)})" if len(jobs) > 1 else ""
            return problem + where
    return None


@functools.cache
def _compose(app: str, overrides: tuple[str, ...]) -> DictConfig:
    """The composed config, with its hydra node (the sweeper's params, the groups chosen);
    cached within one check: a single run's is composed once."""
    from hydra import compose

    return compose(app, overrides=list(overrides), return_hydra_config=True)


def _fixed(parsed) -> list[str]:
    return [o.input_line for o in parsed if not o.is_sweep_override()]


def _unadded_group(loader, parsed, groups: set[str], keys: set[str]) -> str | None:
    """A group outside the defaults list (experiment) chosen without the '+' that adds it."""
    for o in parsed:
        group = o.key_or_group
        added = group not in groups and group not in keys and loader.repository.group_exists(group)
        if added and o.type.name == "CHANGE":
            return f"{group} is added with a '+': +{o.input_line}"
    return None


def _missing_option(e: Exception, overrides: list[str]) -> str | None:
    """model=vea: the option, the nearest that exists and the valid ones (Hydra's, so options
    a user's hydra.searchpath adds count), in place of Hydra's 16 lines."""
    missing = getattr(e, "missing_cfg_file", None) or ""
    for o in overrides:
        group = o.lstrip("+").split("=", 1)[0]
        if missing.startswith(f"{group}/"):
            name, options = missing[len(group) + 1 :], e.options or []
            near = difflib.get_close_matches(name, options, n=1)
            hint = f"; did you mean {group}={near[0]}?" if near else ""
            valid = f" (valid: {', '.join(options)})" if options else ""
            return f"{group}={name} is not an option{hint}{valid}"
    return None


def _unasked_sweep(app: str, parsed, multirun: bool) -> str | None:
    """A sweep (seed=0,1) in a command that is not one (no -m, no experiment's MULTIRUN mode):
    Hydra's three-line refusal in one."""
    from hydra.errors import HydraException
    from hydra.types import RunMode

    sweeps = [o.input_line for o in parsed if o.is_sweep_override()]
    if not sweeps or multirun:
        return None
    try:
        if _compose(app, tuple(_fixed(parsed))).hydra.mode == RunMode.MULTIRUN:
            return None
    except HydraException:
        return None  # the job's own composition says what is wrong
    key, value = sweeps[0].split("=", 1)
    return f"{sweeps[0]} is a sweep: add -m (a list: {key}=[{value}]; a string: {key}='{value}')"


def _jobs(app: str, parsed) -> list[list[str]]:
    """The override lists to compose: the command line's own, or, in a sweep (command-line
    sweeps and an experiment's hydra.sweeper.params), the first job and then each further value
    of each swept key with the others at their first (every value composed once)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    fixed = _fixed(parsed)
    sweeps = {o.get_key_element(): o for o in parsed if o.is_sweep_override()}
    try:
        params = _compose(app, tuple(fixed)).hydra.sweeper.get("params") or {}
    except HydraException:
        params = {}  # the job's own composition says what is wrong
    parser = OverridesParser.create(config_loader=_loader())
    set_here = {o.get_key_element() for o in parsed}
    for key, value in params.items():  # the command line's own value of a key wins, as in Hydra
        if key not in set_here:
            sweeps[key] = parser.parse_overrides([f"{key}={value}"])[0]
    values = {
        key: [f"{key}={v}" for v in o.sweep_string_iterator()]
        for key, o in sweeps.items()
        if o.is_sweep_override() and o.is_discrete_sweep()  # not interval(): an Optuna search
    }
    first = fixed + [options[0] for options in values.values()]
    jobs = [first]
    for options in values.values():
        jobs += [[other if o == options[0] else o for o in first] for other in options[1:]]
    return jobs


def resume_command(app: str, argv: list[str], folder: str, sweep: bool) -> str:
    """The command that resumes the run (the sweep) whose folder is `folder`: the same
    arguments with hydra.run.dir (hydra.sweep.dir) set to it and ckpt_path at its default, auto,
    under which a job of the same config in that folder resumes from its last checkpoint and a
    finished one is skipped (genbench/jobs.py). Without it a rerun writes a new timestamped
    folder and starts afresh."""
    key = "hydra.sweep.dir" if sweep else "hydra.run.dir"
    kept = [a for a in argv if not a.startswith((f"{key}=", "ckpt_path="))]
    return shlex.join([f"genbench-{app}", *kept, f"{key}={folder}"])


def _loader():
    from hydra.core.global_hydra import GlobalHydra

    return GlobalHydra.instance().config_loader()


def _job_problem(app: str, overrides: list[str], parsed, loader) -> str | None:
    """What Hydra refuses in composing this job (an option or a key no config has, a value of
    the wrong type), or what check_config refuses in the composed config."""
    from hydra.errors import HydraException

    try:
        cfg = _compose(app, tuple(overrides))
    except HydraException as e:
        bare = _compose(app, tuple(o for o in overrides if o.startswith("hydra")))
        groups = set(bare.hydra.runtime.choices)
        return (
            _unadded_group(loader, parsed, groups, set(bare))
            or _missing_option(e, overrides)
            or _missing_key_among(app, overrides, groups)
            or _one_line(e)
        )
    try:
        check_config(cfg)
    except ValueError as e:  # check_config's, or a resolver's (OmegaConf adds lines naming the key)
        return str(e).splitlines()[0].removeprefix(RESOLVER_RAISED)
    except OmegaConfBaseException:
        return None  # an interpolation only the run can resolve (${hydra:...}): left to it
    return None


def _missing_key_among(app: str, overrides: list[str], groups: set[str]) -> str | None:
    """The first override whose key the config, composed with the job's group choices, lacks."""
    from hydra.errors import HydraException

    keyed = [(o, o.split("=", 1)[0]) for o in overrides]
    choices = [  # and hydra.*: a user's hydra.searchpath adds options
        o
        for o, k in keyed
        if k in groups or k.startswith("hydra") or (k[0] == "+" and "." not in k)
    ]
    try:
        cfg = _compose(app, tuple(choices))
    except HydraException:
        return None
    for _, key in keyed:
        if key not in groups and not key.startswith(("+", "~", "hydra")):
            problem = _missing_key(cfg, key)
            if problem:
                return problem
    return None


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


def _one_line(e: BaseException) -> str:
    """Hydra's error in one line: its first line and its cause's ("Error merging override
    budget.steps=abc" + "Value 'abc' ... could not be converted to Integer")."""
    head = _first_line(e).removeprefix("Error merging override ").rstrip(".")
    return f"{head}: {_first_line(e.__cause__)}" if e.__cause__ else head


def _first_line(e: BaseException) -> str:
    lines = str(e).strip().splitlines()
    return lines[0] if lines else type(e).__name__
