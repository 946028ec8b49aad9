"""`wtflow run`: run workflows of the wtfile one after the other, shown on the terminal, with the
summary of each at the end."""

from __future__ import annotations

import argparse
import fnmatch
import json
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from wtflow import discover, params, plan, terminal
from wtflow.commands import wtfiles
from wtflow.commands.exit_codes import EXIT_FAILED, EXIT_OK
from wtflow.config import CI_MODES, CONSOLE_MODES, Config
from wtflow.discover import DEFAULT_WTFILE, Registered
from wtflow.errors import LookupFailed, UsageError, WtfileError
from wtflow.model import Placed, Workflow
from wtflow.provenance import Provenance

_EPILOG = """\
examples:
  wtflow run                           every workflow in ./wtfile.py, in file order
  wtflow run ci deploy                 several, in order; stops at the first that fails (unless -k)
  wtflow run --all                     every workflow found (the default without names)
  wtflow run ci -k -j 4 --timeout 600  keep going after failures, 4 processes, 10 min per node
  wtflow run ci --only 'tests/*'       a subtree, plus the nodes on the way to it
  wtflow run ci --tag db --skip-tag slow  the nodes tagged db, but none tagged slow
  wtflow run ci --flag deploy          a feature flag the nodes' when= conditions read
  wtflow run ci -q                     only failures and the summary line
  wtflow run ci --resume               run again what failed or changed since the last run of ci
  wtflow run ci --resume 3f2a --dry-run  what would be reused or run, and why
  wtflow run --junit-xml junit.xml     a JUnit report for CI (GitHub / GitLab logs: --ci, auto by default)
  wtflow run --executor tcp://sched:8786  on a Dask cluster (see `wtflow cluster`)"""


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `run`; it sets `handler(args, config) -> int` as its default."""
    runner = commands.add_parser(
        "run", help="run workflows", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Run one or more workflows of the wtfile.", epilog=_EPILOG,
    )  # fmt: skip
    _add_options(runner)
    runner.set_defaults(handler=cmd_run, late=("names",))


class _Spelled(argparse.Action):
    """Stores the value and, in `<dest>_flag`, the long spelling given, for an error to name it."""

    def __call__(
        self, parser: Any, namespace: argparse.Namespace, values: Any, option: str | None = None
    ) -> None:
        setattr(namespace, self.dest, values)
        longs = [o for o in self.option_strings if o.startswith("--")]
        setattr(namespace, f"{self.dest}_flag", option if option in longs else longs[0])


def _add_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "names", nargs="*", metavar="NAME", help="workflows to run (default: all of them, in file order)"
    )
    parser.add_argument(
        "--workflow", action="append", default=[], metavar="NAME", help="same as NAME (repeatable)"
    )
    parser.add_argument(
        "-p", "--param", action="append", default=[], metavar="NAME=VALUE",
        help="a parameter of the workflow function (repeatable; WTFLOW_PARAM_<NAME> in CI)",
    )  # fmt: skip
    parser.add_argument("--all", action="store_true", help="run every workflow found, in file order")
    parser.add_argument(
        "--dry-run", action="store_true",
        help="print the tree: what each node would do and why, what it runs, the artifacts it leaves",
    )  # fmt: skip
    parser.add_argument(
        "--json",
        action="store_true",
        help="with --dry-run: each node's decision, reason and artifacts, as JSON",
    )
    parser.add_argument(
        "--resume", nargs="?", const="last", metavar="RUN",
        help="reuse what succeeded in RUN (an id or prefix; default: last, the workflow's newest) "
        "with the same digest; run the rest",
    )  # fmt: skip
    parser.add_argument(
        "-j", "--jobs", "--max-parallel", dest="jobs", metavar="N", action=_Spelled,
        help="most processes running at once",
    )  # fmt: skip
    parser.add_argument(
        "-k", "--ignore-failure", "--keep-going", dest="ignore_failure", action="store_true",
        help="run everything even after a failure (still exits 1)",
    )  # fmt: skip
    parser.add_argument(
        "--fail-fast", action="store_true",
        help="the first failure stops every running node (cancelled) and skips the rest",
    )  # fmt: skip
    parser.add_argument("--artifacts-dir", metavar="DIR", help="where node output is kept")
    parser.add_argument("--timeout", metavar="SECONDS", help="time limit per node unless it sets its own")
    parser.add_argument(
        "--deadline", metavar="SECONDS", help="time for the whole run; then it stops (always-nodes still run)"
    )
    parser.add_argument("--kill-grace", metavar="SECONDS", help="seconds between SIGTERM and SIGKILL")
    parser.add_argument(
        "--only", action="append", default=[], metavar="GLOB",
        help="run only nodes whose path matches (e.g. 'build/*'; repeatable), and what leads to them",
    )  # fmt: skip
    parser.add_argument(
        "--tag", action="append", default=[], metavar="TAG",
        help="run only nodes with this tag (repeatable: any of them), and what leads to them",
    )  # fmt: skip
    parser.add_argument(
        "--skip-tag", action="append", default=[], metavar="TAG",
        help="leave out the nodes with this tag (repeatable)",
    )  # fmt: skip
    parser.add_argument(
        "--flag", action="append", default=[], metavar="NAME",
        help="turn on a feature flag for when= conditions (repeatable; replaces WTFLOW_FLAGS)",
    )  # fmt: skip
    parser.add_argument(
        "--executor", metavar="WHERE",
        help="where nodes run: local (the default), or a Dask scheduler, e.g. tcp://scheduler:8786",
    )  # fmt: skip
    parser.add_argument(
        "--console", choices=CONSOLE_MODES,
        help="output style (default: live on a terminal, plain otherwise)",
    )  # fmt: skip
    parser.add_argument("--junit-xml", metavar="PATH", help="write a JUnit XML report of the nodes to PATH")
    parser.add_argument(
        "--ci", choices=CI_MODES,
        help="CI log format (default: auto, from GITHUB_ACTIONS / GITLAB_CI; none = plain console)",
    )  # fmt: skip
    parser.add_argument("--events", metavar="FILE", help="write every engine event to FILE as JSON lines")
    parser.add_argument("--report", metavar="FILE", help="write the run's HTML report there when it ends")


def cmd_run(args: argparse.Namespace, config: Config) -> int:
    args.file, args.names = discover.positional_path(args.names, args.file, default=DEFAULT_WTFILE)
    found = wtfiles.found(args).workflows
    chosen = _choose(found, [*args.names, *args.workflow], every=args.all, where=args.file)
    given = params.split(args.param)
    params.check_known(given, {reg.name: reg.params for reg in chosen})
    values = [params.values_for(reg.name, reg.params, given, os.environ) for reg in chosen]
    # git answers while the trees are built; a tree that fails to build still reaps git.
    origin = Provenance.start(Path(args.file), sys.argv if args.argv is None else ["wtflow", *args.argv])
    try:
        workflows = [wtfiles.build(reg, v) for reg, v in zip(chosen, values, strict=True)]
        only = _only(args.only, workflows)
        tags = _tags(args.tag, args.skip_tag, workflows)
    except BaseException:
        origin.close()
        raise
    color = terminal.color_wanted(args.color, sys.stderr)
    from wtflow import reports  # imported only by the command that runs something

    reports.start_afresh()  # the workflows of this command share its report files
    outcome = EXIT_OK
    selection = {"workflows": [reg.name for reg in chosen], "only": list(args.only)}
    if args.tag or args.skip_tag:
        selection.update(tags=list(args.tag), skip_tags=list(args.skip_tag))
    where = origin.collect(selection=selection)
    for wf, v in zip(workflows, values, strict=True):
        code = _run_one(wf, config, args, only=only, tags=tags, color=color, params=v,
                        provenance={**where, "params": params.plain_params(v)})  # fmt: skip
        if code > EXIT_FAILED:  # interrupted: stop here, as make does
            return code
        outcome = max(outcome, code)
        if code == EXIT_FAILED and not config.run.ignore_failure:
            break
    return outcome


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
    if every or not names:  # no name runs every workflow, in file order
        return list(found.values())
    chosen: dict[str, Registered] = {}
    for name in names:
        reg = discover.lookup(found, name)
        if reg is None:
            # A word that looks like a path but names no wtfile or folder here ends up as a name.
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


def _tags(tags: list[str], skip_tags: list[str], workflows: list[Workflow]) -> Tags:
    """`--tag` and `--skip-tag`, checked: each names a tag some node of these workflows has."""
    used = frozenset().union(*(plan.tags_in(wf) for wf in workflows))
    plan.check_tags(used, {"--tag": tags, "--skip-tag": skip_tags}, " (wtflow list --tags)")
    return Tags(frozenset(tags), frozenset(skip_tags))


def _nothing(p: Placed) -> bool:
    return False


@dataclass(frozen=True, slots=True)
class Tags:
    """What `--tag` and `--skip-tag` ask for."""

    wanted: frozenset[str] = frozenset()
    unwanted: frozenset[str] = frozenset()

    def within(self, wf: Workflow) -> Tags | None:
        """The tags that workflow's nodes set (what its Engine takes); None when it has none of
        those wanted, and runs nothing, as a tag another workflow has is no error in this one."""
        used = plan.tags_in(wf)
        if self.wanted and self.wanted.isdisjoint(used):
            return None
        return Tags(self.wanted & used, self.unwanted & used)


def _run_one(
    wf: Workflow,
    config: Config,
    args: argparse.Namespace,
    *,
    only: Callable[[Placed], bool] | None,
    tags: Tags,
    color: bool,
    params: dict[str, Any],
    provenance: dict[str, Any],
) -> int:
    from wtflow import consoles
    from wtflow.engine import Engine  # `wtflow --version` and `wtflow list` need none of it

    own = tags.within(wf)
    if own is None:  # it has none of the tags asked for: every node is left out
        only, own = _nothing, Tags()
    tags = own
    if args.dry_run and args.json:
        from wtflow.decisions import as_json

        decisions = Engine(wf, config, dry_run=True, resume=args.resume, only=only, tags=tags.wanted,
                           skip_tags=tags.unwanted).decisions()  # fmt: skip
        print(json.dumps(as_json(wf, decisions), indent=2))
        return EXIT_OK
    if args.dry_run:
        return Engine(wf, config, dry_run=True, resume=args.resume, only=only, tags=tags.wanted,
                      skip_tags=tags.unwanted).run()  # fmt: skip
    report = consoles.RunReport()
    view = consoles.console_for(config.run.console, color=args.color, verbose=args.verbose > 0)
    engine = Engine(wf, config, listeners=[report], console=view, resume=args.resume,
                    params=params, provenance=provenance, only=only, tags=tags.wanted,
                    skip_tags=tags.unwanted)  # fmt: skip
    started = time.monotonic()
    code = engine.run()  # closes the console even after a second Ctrl-C: the cursor comes back
    sys.stderr.write(report.summary(code, time.monotonic() - started, color=color))
    sys.stderr.flush()
    return code
