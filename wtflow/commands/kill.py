"""`wtflow kill RUN`: end what a crashed run left running on this host.

A run's processes carry its id in `WTFLOW_PROCESS_TOKENS`, so they are found in procfs without
the record (which may be off) and without the wtflow that started them (which may be dead).
"""

from __future__ import annotations

import argparse
import os
import re
import sys

from wtflow.config import Config
from wtflow.errors import UsageError

_EPILOG = """\
examples:
  wtflow kill f9ac085d                 end every process of that run still on this host
  wtflow runs -s failed                find the id of a run whose wtflow was killed

the processes get SIGTERM, run.kill_grace seconds to end, then SIGKILL. wtflow ends its
processes itself when it is stopped, even by SIGKILL (a watchdog does it); this is for what a
machine crash or a lost watchdog left behind."""

_RUN_ID = re.compile(r"[0-9a-f]{4,32}")


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `kill`; it sets `handler(args, config) -> int` as its default."""
    parser = subparsers.add_parser(
        "kill", help="end what a crashed run left running on this host",
        description="End every process on this host that carries the run's id in its environment.",
        epilog=_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    parser.add_argument("run", help="the run's id, or a unique prefix of it (at least 4 characters)")
    parser.set_defaults(handler=cmd_kill)


def cmd_kill(args: argparse.Namespace, config: Config) -> int:
    from wtflow.executors._watchdog_process import end_everything, named_on_host, runs_on_host

    prefix = args.run.strip().lower()
    if not _RUN_ID.fullmatch(prefix):
        raise UsageError(
            f"run {args.run!r}: is not a run id; give the id or at least its first 4 characters, "
            "as `wtflow runs` shows them"
        )
    found = {run_id: pids for run_id, pids in runs_on_host().items() if run_id.startswith(prefix)}
    # PyFuncs are named after the run's first 8 characters: found by that name when no process
    # of theirs carries the token (their watchdog and fork server died with the run).
    named = {
        short: pids
        for short, pids in named_on_host().items()
        if (short.startswith(prefix) if len(prefix) <= len(short) else prefix.startswith(short))
    }
    runs = set(found) | {short for short in named if not any(r.startswith(short) for r in found)}
    if len(runs) > 1:
        raise UsageError(
            f"run {args.run!r}: is the start of several runs' ids ({', '.join(sorted(runs))}); "
            "give more of the id"
        )
    if not runs:
        print(f"wtflow: no process of run {prefix} is running on this host", file=sys.stderr)
        return 0
    [run_id] = runs
    pyfuncs = [pid for pids in named.values() for pid in pids]
    groups = {pgid for pgid in map(_group_of, pyfuncs) if pgid is not None}
    end_everything(groups, set(found), config.run.kill_grace)
    ended = set(pyfuncs).union(*found.values())
    print(f"wtflow: ended {len(ended)} process(es) of run {run_id}", file=sys.stderr)
    return 0


def _group_of(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except OSError:  # gone meanwhile
        return None
