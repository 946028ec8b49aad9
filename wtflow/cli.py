"""The `wtflow` command: arguments, settings, and the one place errors become exit codes.

    wtflow [-c FILE | --no-config] [-f PATH] [--db-url URL] list [--json]
    wtflow [...] run [NAME ...] [--all] [--dry-run] [-j N] [-k] [--only GLOB] [...]
    wtflow [...] runs | show | logs | db                  (added by wtflow/history.py)
    wtflow cluster [--workers N]                         (wtflow/commands/cluster.py)

Exit codes: 0 ok · 1 a node failed · 2 usage, configuration or wtfile error · 3 internal error
(a crash log is written) · 130 Ctrl-C · 143 SIGTERM.
"""

from __future__ import annotations

import argparse
import configparser
import fnmatch
import json
import os
import signal
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from wtflow import __version__, discover, history, live, terminal
from wtflow.commands import cluster as cluster_command
from wtflow.config import (
    CONSOLE_MODES,
    Config,
    parse_executor,
    parse_positive_int,
    parse_seconds,
    parse_timeout,
)
from wtflow.discover import Registered
from wtflow.engine import Engine
from wtflow.errors import LookupFailed, UsageError, WtfileError, WtflowError
from wtflow.listeners import console_for
from wtflow.model import Placed, Workflow

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERNAL, EXIT_INTERRUPTED = 0, 1, 2, 3, 130
DEFAULT_WTFILE = "wtfile.py"
DEFAULT_INI = "wtflow.ini"

Handler = Callable[[argparse.Namespace, Config], int]

_MAIN_EPILOG = """\
examples:
  wtflow list                          workflows in ./wtfile.py and their node counts
  wtflow run                           run the workflows of ./wtfile.py
  wtflow -f ci/wtfile.py run lint test run two workflows, one after the other
  wtflow run ci -j 2 --only 'build/*'  two processes at most; only build/* and what leads there
  wtflow run ci --dry-run              print the tree and what each node would run

settings come from defaults < wtflow.ini (or -c FILE) < WTFLOW_* variables < flags.
exit codes: 0 ok, 1 a node failed, 2 usage or configuration error, 130 interrupted."""

_RUN_EPILOG = """\
examples:
  wtflow run                           every workflow in ./wtfile.py, in file order
  wtflow run ci deploy                 several, in order; stops at the first that fails (unless -k)
  wtflow run --all                     every workflow found (the default without names)
  wtflow run ci -k -j 4 --timeout 600  keep going after failures, 4 processes, 10 min per node
  wtflow run ci --only 'tests/*'       a subtree, plus the nodes on the way to it
  wtflow run ci -q                     only failures and the summary line
  wtflow run --executor tcp://sched:8786  on a Dask cluster (see `wtflow cluster`)"""


# -- the parser ---------------------------------------------------------------------------


# (flags, argparse keywords, default before the command); -c and --no-config exclude each other.
_GLOBAL_OPTIONS: tuple[tuple[tuple[str, ...], dict[str, Any], Any], ...] = (
    (
        ("-c", "--config"),
        {"metavar": "FILE", "help": f"INI file to read (default: ./{DEFAULT_INI} if present)"},
        None,
    ),
    (("--no-config",), {"action": "store_true", "help": f"do not read ./{DEFAULT_INI}"}, False),
    (
        ("-f", "--file"),
        {
            "metavar": "PATH",
            "help": f"wtfile, or a folder: every *.py below it (default: ./{DEFAULT_WTFILE})",
        },
        DEFAULT_WTFILE,
    ),
    (("--db-url",), {"metavar": "URL", "help": "database URL of the record; '' = no record"}, None),
    (
        ("--state-dir",),
        {"metavar": "DIR", "help": "folder for the database and output (default: .wtflow)"},
        None,
    ),
    (
        ("--color",),
        {"choices": ("auto", "always", "never"), "help": "colour (default: auto; NO_COLOR turns it off)"},
        "auto",
    ),
    (("-v", "--verbose"), {"action": "count", "help": "more detail"}, 0),
    (("-q", "--quiet"), {"action": "store_true", "help": "only failures and the summary"}, False),
)


def _add_global_options(parser: argparse.ArgumentParser, *, top: bool) -> None:
    """Options accepted before and after the command (`wtflow -f x run`, `wtflow run -f x`).

    After the command they default to SUPPRESS, so one absent there does not overwrite the value
    given before the command; and a command's own option of the same spelling wins (`logs -f`
    is --follow)."""
    group = parser.add_argument_group("global options")
    taken = set(parser._option_string_actions)
    free = [option for option in _GLOBAL_OPTIONS if not taken.intersection(option[0])]
    names = {option[0][0] for option in free}
    exclusive = group.add_mutually_exclusive_group() if {"-c", "--no-config"} <= names else group
    for flags, keywords, default in free:
        target = exclusive if flags[0] in ("-c", "--no-config") else group
        target.add_argument(*flags, default=default if top else argparse.SUPPRESS, **keywords)


def _add_run_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "names", nargs="*", metavar="NAME", help="workflows to run (default: all of them, in file order)"
    )
    parser.add_argument(
        "--workflow", action="append", default=[], metavar="NAME", help="same as NAME (repeatable)"
    )
    parser.add_argument("--all", action="store_true", help="run every workflow found, in file order")
    parser.add_argument("--dry-run", action="store_true", help="print the tree and what each node would run")
    parser.add_argument(
        "-j", "--jobs", "--max-parallel", dest="jobs", metavar="N", help="most processes running at once"
    )
    parser.add_argument(
        "-k", "--ignore-failure", "--keep-going", dest="ignore_failure", action="store_true",
        help="run everything even after a failure (still exits 1)",
    )  # fmt: skip
    parser.add_argument("--artifacts-dir", metavar="DIR", help="where node output is kept")
    parser.add_argument("--timeout", metavar="SECONDS", help="time limit per node unless it sets its own")
    parser.add_argument("--kill-grace", metavar="SECONDS", help="seconds between SIGTERM and SIGKILL")
    parser.add_argument(
        "--only", action="append", default=[], metavar="GLOB",
        help="run only nodes whose path matches (e.g. 'build/*'; repeatable), and what leads to them",
    )  # fmt: skip
    parser.add_argument(
        "--executor", metavar="WHERE",
        help="where nodes run: local (the default), or a Dask scheduler, e.g. tcp://scheduler:8786",
    )  # fmt: skip
    parser.add_argument(
        "--console", choices=CONSOLE_MODES,
        help="output style (default: live on a terminal, plain otherwise)",
    )  # fmt: skip


def build_parser() -> tuple[argparse.ArgumentParser, argparse._SubParsersAction[argparse.ArgumentParser]]:
    fmt = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(
        prog="wtflow",
        description="Run trees of shell commands and Python functions defined in a wtfile.py.",
        epilog=_MAIN_EPILOG,
        formatter_class=fmt,
    )
    parser.add_argument("--version", action="version", version=f"wtflow {__version__}")
    _add_global_options(parser, top=True)
    commands = parser.add_subparsers(title="commands", metavar="COMMAND", required=True)

    lister = commands.add_parser(
        "list", help="list workflows and their node counts", formatter_class=fmt,
        description="List the workflows the wtfile defines.",
        epilog="examples:\n  wtflow list\n  wtflow -f ci/ list --json",
    )  # fmt: skip
    lister.add_argument("--json", action="store_true", help="machine-readable output")
    lister.set_defaults(handler=cmd_list)

    runner = commands.add_parser(
        "run", help="run workflows", formatter_class=fmt,
        description="Run one or more workflows of the wtfile.", epilog=_RUN_EPILOG,
    )  # fmt: skip
    _add_run_options(runner)
    runner.set_defaults(handler=cmd_run)

    history.register(commands)
    cluster_command.register(commands)
    for sub in commands.choices.values():
        _add_global_options(sub, top=False)
    return parser, commands


# -- settings -----------------------------------------------------------------------------


def _ini_file(args: argparse.Namespace) -> Path | None:
    if args.config is not None:
        return Path(args.config)
    if args.no_config:
        return None
    found = Path(DEFAULT_INI)
    return found if found.is_file() else None


def _flag_values(args: argparse.Namespace) -> dict[str, Any]:
    """Flags given on the command line, as 'group.field' overrides."""
    values: dict[str, Any] = {}
    if args.db_url is not None:
        values["db.url"] = args.db_url.strip()
    if args.state_dir is not None:
        values["storage.state_dir"] = Path(args.state_dir).expanduser()
    if getattr(args, "artifacts_dir", None) is not None:
        values["storage.artifacts_dir"] = Path(args.artifacts_dir).expanduser()
    if getattr(args, "jobs", None) is not None:
        values["run.max_parallel"] = parse_positive_int(args.jobs, source="--jobs")
    if getattr(args, "ignore_failure", False):
        values["run.ignore_failure"] = True
    if getattr(args, "timeout", None) is not None:
        values["run.timeout"] = parse_timeout(args.timeout, source="--timeout")
    if getattr(args, "kill_grace", None) is not None:
        values["run.kill_grace"] = parse_seconds(args.kill_grace, source="--kill-grace")
    if getattr(args, "console", None) is not None:
        values["run.console"] = args.console
    if getattr(args, "executor", None) is not None:
        values["run.executor"] = parse_executor(args.executor, source="--executor")
    if args.quiet:
        values["run.console"] = "quiet"
    return values


def _ini_sets_console(ini: Path | None) -> bool:
    if ini is None:
        return False
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(ini)  # already parsed once by Config.load, so it is valid here
    return parser.has_option("run", "console")


def load_config(args: argparse.Namespace) -> Config:
    """defaults < INI file < WTFLOW_* variables < flags; the console defaults to the terminal's kind."""
    ini = _ini_file(args)
    flags = _flag_values(args)
    config = Config.load(ini=ini, environ=os.environ, overrides=flags)
    chosen = "run.console" in flags or "WTFLOW_CONSOLE" in os.environ or _ini_sets_console(ini)
    if not chosen:
        # The Python API defaults to the nodes' raw bytes; a person at the CLI gets a view.
        config = config.with_values({"run.console": "live"})
    if config.run.console == "live" and not terminal.is_terminal(sys.stdout):
        config = config.with_values({"run.console": "plain"})
    return config


# -- discovery ----------------------------------------------------------------------------


def _discover(args: argparse.Namespace) -> dict[str, Registered]:
    return discover.load(Path(args.file))


def _build(reg: Registered) -> Workflow:
    """Call the user's function; its mistakes are usage errors showing its own traceback."""
    try:
        return reg.build()
    except WtflowError as e:
        raise type(e)(f"workflow {reg.name!r} ({reg.source}): {e}") from None
    except Exception as e:
        raise WtfileError(
            f"workflow {reg.name!r} ({reg.source}) raised while building its tree:\n{_user_traceback(e)}"
        ) from None


def _user_traceback(exc: BaseException) -> str:
    """The traceback without wtflow's own frames (they come first: cli, then discover)."""
    package = str(Path(__file__).resolve().parent)
    tb = exc.__traceback__
    while tb is not None and str(Path(tb.tb_frame.f_code.co_filename).resolve()).startswith(package):
        tb = tb.tb_next
    return "".join(traceback.format_exception(type(exc), exc, tb)).rstrip()


def _choose(found: dict[str, Registered], names: list[str], *, every: bool, where: str) -> list[Registered]:
    if not found:
        raise WtfileError(
            f"no workflows in {where}; decorate a function that returns the root Node with @wtflow.workflow"
        )
    available = ", ".join(found)
    if every and names:
        raise UsageError(
            f"--all and workflow names {', '.join(names)} were both given; pass one or the other"
        )
    if every or not names:  # as the seed: no name runs every workflow, in file order
        return list(found.values())
    chosen: dict[str, Registered] = {}
    for name in names:
        reg = found.get(name) or found.get(name.replace("_", "-"))
        if reg is None:
            # Upstream took the wtfile as a positional argument; say where it goes now.
            hint = (
                f"; to load {name!r} pass it with -f" if name.endswith(".py") or Path(name).is_dir() else ""
            )
            raise LookupFailed(f"workflow {name!r} not found in {where}; available: {available}{hint}")
        chosen[reg.name] = reg
    return list(chosen.values())


def _only(patterns: list[str], workflows: list[Workflow]) -> Callable[[Placed], bool] | None:
    """A node filter for --only: a glob matches the node's path with or without the root's name."""
    if not patterns:
        return None

    def matches(pattern: str, p: Placed) -> bool:
        below_root = "/".join(p.path[1:])
        return fnmatch.fnmatchcase(p.path_str, pattern) or (
            bool(below_root) and fnmatch.fnmatchcase(below_root, pattern)
        )

    for pattern in patterns:
        if not any(matches(pattern, p) for wf in workflows for p in wf.placed):
            sample = ", ".join(p.path_str for p in workflows[0].placed[:5])
            raise LookupFailed(f"--only {pattern!r} matches no node; node paths look like: {sample}")
    return lambda p: any(matches(pattern, p) for pattern in patterns)


# -- commands -----------------------------------------------------------------------------


def cmd_list(args: argparse.Namespace, config: Config) -> int:
    found = _discover(args)
    workflows = [(reg, _build(reg)) for reg in found.values()]
    if args.json:
        rows = [{"name": r.name, "nodes": len(wf.placed), "source": r.source} for r, wf in workflows]
        print(json.dumps(rows, indent=2))
        return EXIT_OK
    if not workflows:
        print("No workflows found.")
        return EXIT_OK
    print(f"Found {len(workflows)} workflow(s):")
    for reg, wf in workflows:
        count = len(wf.placed)
        print(f"- {reg.name} ({count} node{'' if count == 1 else 's'})")
    return EXIT_OK


def cmd_run(args: argparse.Namespace, config: Config) -> int:
    found = _discover(args)
    chosen = _choose(found, [*args.names, *args.workflow], every=args.all, where=args.file)
    workflows = [_build(reg) for reg in chosen]
    only = _only(args.only, workflows)
    color = terminal.color_wanted(args.color, sys.stderr)
    outcome = EXIT_OK
    for wf in workflows:
        code = _run_one(wf, config, args, only=only, color=color)
        if code > EXIT_FAILED:  # interrupted: stop here, as make does
            return code
        outcome = max(outcome, code)
        if code == EXIT_FAILED and not config.run.ignore_failure:
            break
    return outcome


def _run_one(
    wf: Workflow,
    config: Config,
    args: argparse.Namespace,
    *,
    only: Callable[[Placed], bool] | None,
    color: bool,
) -> int:
    if args.dry_run:
        return Engine(wf, config, dry_run=True, only=only).run()
    report = live.RunReport()
    view = console_for(config, color=args.color, verbose=args.verbose > 0)
    engine = Engine(wf, config, listeners=[report], console=view, only=only)
    started = time.monotonic()
    code = engine.run()  # closes the console even after a second Ctrl-C: the cursor comes back
    sys.stderr.write(report.summary(code, time.monotonic() - started, color=color))
    sys.stderr.flush()
    return code


# -- the boundary -------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    """Run the `wtflow` command; returns the exit code."""
    try:
        parser, _ = build_parser()
        args = parser.parse_args(argv)  # bad flags: argparse prints usage and exits 2
        handler: Handler = args.handler
        return handler(args, load_config(args))
    except UsageError as e:
        print(f"wtflow: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("wtflow: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # `wtflow list | head -1`: the reader left; nothing more to say, and nowhere to say it.
        _silence_stdout()
        return 128 + signal.SIGPIPE  # what a tool killed by SIGPIPE reports, as `cat` would
    except Exception as e:
        if os.environ.get("WTFLOW_DEBUG"):
            raise
        log = _write_crash_log(traceback.format_exc(), argv)
        print(
            f"wtflow: internal error ({type(e).__name__}: {e}); traceback saved to {log}; please report it",
            file=sys.stderr,
        )
        return EXIT_INTERNAL


def _silence_stdout() -> None:
    # Python would print a second BrokenPipeError when it flushes stdout at exit.
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())


def _write_crash_log(text: str, argv: Sequence[str] | None) -> str:
    fd, path = tempfile.mkstemp(prefix="wtflow-crash-", suffix=".log")
    with os.fdopen(fd, "w") as f:
        f.write(f"wtflow {__version__}, Python {sys.version.split()[0]}\n")
        f.write(f"argv: {list(sys.argv[1:] if argv is None else argv)}\n\n{text}")
    return path
