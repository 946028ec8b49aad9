"""The `wtflow` command: arguments, settings, and the one place errors become exit codes.

    wtflow [-c FILE | --no-config] [-f PATH] [--db-url URL] list [--json]
    wtflow [...] run [NAME ...] [--all] [--dry-run] [-j N] [-k] [--only GLOB] [...]
    wtflow [...] runs | show | logs | db                  (wtflow/commands/)
    wtflow [...] gc [--keep N] [--older-than DURATION] [--keep-failed] [--dry-run]
    wtflow [...] kill RUN

The commands themselves are in wtflow/commands/, one module each; this module is the parser
skeleton, the global options, the settings and `main()`.

Exit codes: 0 ok · 1 a node failed · 2 usage, configuration or wtfile error · 3 internal error
(a crash log is written) · 130 Ctrl-C · 143 SIGTERM · 129 SIGHUP.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from wtflow._version import __version__
from wtflow.commands.exit_codes import EXIT_INTERNAL, EXIT_INTERRUPTED, EXIT_USAGE
from wtflow.errors import UsageError

# `typing` alone is a tenth of `wtflow --version`; type checkers take this name as true.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from pathlib import Path
    from typing import Any, NoReturn

    from wtflow.config import Config

    Handler = Callable[[argparse.Namespace, Config], int]

DEFAULT_INI = "wtflow.ini"
DEFAULT_WTFILE = "wtfile.py"  # wtflow.discover's, which a test keeps equal: discover loads the model

# Each command's module, in the order `wtflow --help` lists them. A command's module is imported
# only when that command is asked for, so `wtflow list` loads neither the engine nor the
# history's database code, and `wtflow --version` loads no command at all.
COMMANDS = {
    "list": "wtflow.commands.list",
    "run": "wtflow.commands.run",
    "runs": "wtflow.commands.runs",
    "show": "wtflow.commands.show",
    "logs": "wtflow.commands.logs",
    "diff": "wtflow.commands.diff",
    "db": "wtflow.commands.db",
    "gc": "wtflow.commands.gc",
    "config": "wtflow.commands.config",
    "report": "wtflow.commands.report",
    "ui": "wtflow.commands.ui",
    "cluster": "wtflow.commands.cluster",
    "kill": "wtflow.commands.kill",
}

_MAIN_EPILOG = """\
examples:
  wtflow list                          workflows in ./wtfile.py and their node counts
  wtflow run                           run the workflows of ./wtfile.py
  wtflow -f ci/wtfile.py run lint test run two workflows, one after the other
  wtflow run ci -j 2 --only 'build/*'  two processes at most; only build/* and what leads there
  wtflow run ci --dry-run              print the tree and what each node would run

settings come from defaults < wtflow.ini (or -c FILE) < WTFLOW_* variables < flags.
exit codes: 0 ok, 1 a node failed, 2 usage or configuration error, 130 interrupted."""

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
            "help": f"wtfile, or a folder: every *wtfile*.py below it (default: ./{DEFAULT_WTFILE})",
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


def build_parser(
    only: str | None = None,
) -> tuple[argparse.ArgumentParser, argparse._SubParsersAction[argparse.ArgumentParser]]:
    """The whole parser, or with `only` one command's: what parsing a command line that names
    that command needs (its help, its errors and the top level's are the same either way)."""
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
    for name, module in COMMANDS.items():
        if only is None or name == only:
            importlib.import_module(module).register(commands)
    for sub in commands.choices.values():
        _add_global_options(sub, top=False)
    return parser, commands


class _NotPlain(Exception):
    pass


class _Scout(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise _NotPlain(message)


def command_asked(argv: Sequence[str] | None) -> str | None:
    """The command a command line names, found with the global options alone (and `--version`
    answered); None when it takes the whole parser to say: no command, --help, a mistake."""
    scout = _Scout(prog="wtflow", add_help=False)
    scout.add_argument("--version", action="version", version=f"wtflow {__version__}")
    _add_global_options(scout, top=True)
    scout.add_argument("command", nargs="?")
    scout.add_argument("rest", nargs=argparse.REMAINDER)
    try:
        known, _ = scout.parse_known_args(argv)
    except _NotPlain:
        return None
    return known.command if known.command in COMMANDS else None


# -- settings -----------------------------------------------------------------------------


def _ini_file(args: argparse.Namespace) -> Path | None:
    from pathlib import Path

    if args.config is not None:
        return Path(args.config)
    if args.no_config:
        return None
    found = Path(DEFAULT_INI)
    return found if found.is_file() else None


def _flag_values(args: argparse.Namespace) -> dict[str, Any]:
    """Flags given on the command line, as `section.key` overrides."""

    from wtflow.config import (
        parse_executor,
        parse_flags,
        parse_path,
        parse_positive_int,
        parse_seconds,
        parse_timeout,
    )

    values: dict[str, Any] = {}
    if args.db_url is not None:
        values["database.url"] = args.db_url.strip()
    # Empty (`--artifacts-dir "$UNSET"`) is the default, as an empty variable or INI value is.
    if args.state_dir is not None:
        values["storage.state_dir"] = parse_path(args.state_dir, source="--state-dir")
    if getattr(args, "artifacts_dir", None) is not None:
        values["storage.artifacts_dir"] = parse_path(args.artifacts_dir, source="--artifacts-dir")
    if getattr(args, "jobs", None) is not None:
        values["run.max_parallel"] = parse_positive_int(
            args.jobs, source=getattr(args, "jobs_flag", "--jobs")
        )
    if getattr(args, "ignore_failure", False):
        values["run.ignore_failure"] = True
    if getattr(args, "fail_fast", False):
        values["run.fail_fast"] = True
    if getattr(args, "timeout", None) is not None:
        values["run.timeout"] = parse_timeout(args.timeout, source="--timeout")
    if getattr(args, "deadline", None) is not None:
        values["run.deadline"] = parse_timeout(args.deadline, source="--deadline")
    if getattr(args, "flag", None):
        values["run.flags"] = parse_flags(",".join(args.flag), source="--flag")
    if getattr(args, "kill_grace", None) is not None:
        values["run.kill_grace"] = parse_seconds(args.kill_grace, source="--kill-grace")
    if getattr(args, "report", None) is not None:
        values["report.html"] = parse_path(args.report, source="--report")
    if getattr(args, "console", None) is not None:
        values["run.console"] = args.console
    if getattr(args, "junit_xml", None) is not None:
        values["report.junit_xml"] = parse_path(args.junit_xml, source="--junit-xml")
    if getattr(args, "ci", None) is not None:
        values["report.ci"] = args.ci
    if getattr(args, "events", None) is not None:
        values["report.events"] = parse_path(args.events, source="--events")
    if getattr(args, "executor", None) is not None:
        values["run.executor"] = parse_executor(args.executor, source="--executor")
    if args.quiet:
        values["run.console"] = "quiet"
    return values


def load_config(args: argparse.Namespace) -> Config:
    """defaults < INI file < WTFLOW_* variables < flags; the console defaults to the terminal's kind."""
    from wtflow import terminal
    from wtflow.config import Config

    ini = _ini_file(args)
    flags = _flag_values(args)
    config = Config.load(ini=ini, environ=os.environ, overrides=flags, overrides_source="flag")
    if "run.console" not in config.sources:
        # The Python API defaults to the nodes' raw bytes; a person at the CLI gets a view.
        config = config.with_values({"run.console": "live"}, source="default")
    if config.run.console == "live" and not terminal.is_terminal(sys.stdout):
        config = config.with_values({"run.console": "plain"}, source=config.source("run.console"))
    return config


def _place_late(args: argparse.Namespace, extra: list[str], parser: argparse.ArgumentParser) -> None:
    """Words after an option, for the positionals a command names in `late`.

    argparse fills a command's optional positionals with the words before its first option,
    so `logs last --stderr build` and `run ci -j 4 deploy` left `build` and `deploy` over as
    unrecognized. A list (`run`'s names) takes every such word, any other one word if empty."""
    for name in getattr(args, "late", ()):
        value = getattr(args, name)
        while extra and not extra[0].startswith("-") and (value is None or isinstance(value, list)):
            word = extra.pop(0)
            if value is None:
                setattr(args, name, word)
                break
            value.append(word)
    if extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")


# -- the boundary -------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    """Run the `wtflow` command; returns the exit code."""
    try:
        parser, _ = build_parser(only=command_asked(argv))
        args, extra = parser.parse_known_args(argv)
        _place_late(args, extra, parser)  # what is left over: argparse prints usage and exits 2
        args.argv = None if argv is None else list(argv)  # the command line, for a run's provenance
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
        import signal

        _silence_stdout()
        return 128 + signal.SIGPIPE  # what a tool killed by SIGPIPE reports, as `cat` would
    except Exception as e:
        if os.environ.get("WTFLOW_DEBUG"):
            raise
        import traceback

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
    import tempfile

    fd, path = tempfile.mkstemp(prefix="wtflow-crash-", suffix=".log")
    with os.fdopen(fd, "w") as f:
        f.write(f"wtflow {__version__}, Python {sys.version.split()[0]}\n")
        f.write(f"argv: {list(sys.argv[1:] if argv is None else argv)}\n\n{text}")
    return path
