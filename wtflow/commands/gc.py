"""`wtflow gc`: remove old runs, their folders and their rows together, and say what it freed."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from wtflow.commands.record import columns, local_time, print_json
from wtflow.config import Config, parse_positive_int

if TYPE_CHECKING:
    from wtflow.db.retention import Collection

EPILOG = """\
examples:
  wtflow gc --keep 10                  all but the 10 newest runs of each workflow
  wtflow gc --older-than 30d           runs that started more than 30 days ago
  wtflow gc --keep 5 --older-than 7d   only runs beyond the 5 newest and older than a week
  wtflow gc --keep 3 --keep-failed -w ci
                                       of workflow ci: the 3 newest, and every failed run
  wtflow gc --keep 10 --dry-run        what would go and how much it would free; removes nothing
  wtflow gc                            only the records of runs whose folders were removed by hand

never removed: a running run, the newest run of each workflow (what `latest` points to), and a
run recorded on another host. --keep defaults to [storage] keep_runs / WTFLOW_KEEP_RUNS.
durations: s, m, h, d, w, or several (1d12h). exit 1: a folder could not be removed."""


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "gc", help="remove old runs: their output and their record",
        description="Remove old runs' folders and their rows in the record together, and say what it freed.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    parser.add_argument("--keep", metavar="N", help="keep the N newest runs of each workflow")
    parser.add_argument(
        "--older-than", metavar="DURATION", help="remove only runs older than this (e.g. 30d)"
    )
    parser.add_argument(
        "--keep-failed", action="store_true", help="keep runs that failed, timed out, were cancelled or crashed"
    )
    parser.add_argument("-w", "--workflow", help="only runs of this workflow (default: every workflow)")
    parser.add_argument("-n", "--dry-run", action="store_true", help="say what would go; remove nothing")
    parser.add_argument("--json", action="store_true", help="one JSON object, for scripts")
    parser.set_defaults(handler=cmd_gc)


def cmd_gc(args: argparse.Namespace, config: Config) -> int:
    from sqlalchemy.engine import make_url

    from wtflow.db import retention, schema
    from wtflow.db.read import record_url

    keep = config.storage.keep_runs if args.keep is None else parse_positive_int(args.keep, source="--keep")
    older = (
        None if args.older_than is None else retention.parse_duration(args.older_than, source="--older-than")
    )
    policy = retention.Policy(
        keep=keep, older_than=older, keep_failed=args.keep_failed, workflow=args.workflow
    )
    url = record_url(config)
    database = make_url(url).database if make_url(url).get_backend_name() == "sqlite" else None
    if database and database != ":memory:" and not Path(database).exists():
        # Nothing ran here yet: say so rather than create an empty database.
        done: Collection = retention.Collection(args.dry_run, (), {})
    else:
        engine = schema.connect(url)  # a writer: runs whose wtflow is gone are settled first
        try:
            done = retention.collect(engine, policy, dry_run=args.dry_run)
        finally:
            engine.dispose()
    if args.json:
        print_json(_shape(done))
    else:
        _print(done, hint=not policy.selects)
    for problem in done.problems:
        print(f"wtflow: error: {problem}", file=sys.stderr)
    return 1 if done.problems else 0


def _print(done: Collection, *, hint: bool) -> None:
    if done.removed:
        rows = [("ID", "WORKFLOW", "STARTED", "STATUS", "FREES" if done.dry_run else "FREED")]
        for r in done.removed:
            frees = size_text(r.freed) if r.why == "policy" else r.why
            rows.append((r.id[:8], r.workflow, local_time(r.started_at), r.status, frees))
        print("\n".join(columns(rows)))
    n = len(done.removed)
    verb = "would remove" if done.dry_run else "removed"
    freeing = "freeing" if done.dry_run else "freed"
    gone = sum(r.why != "policy" for r in done.removed)
    already = f" ({gone} whose folder was already gone)" if gone else ""
    head = (
        f"{verb} {n} run{'s' * (n != 1)}{already}, {freeing} {size_text(done.freed)}"
        if n
        else "nothing to remove"
    )
    kept = sum(done.kept.values())
    why = ", ".join(f"{count} {reason}" for reason, count in sorted(done.kept.items(), key=lambda kv: -kv[1]))
    tail = f"; kept {kept} run{'s' * (kept != 1)} ({why})" if kept else ""
    print(head + tail)
    if hint:
        print("(give --keep N or --older-than DURATION, or set [storage] keep_runs, to remove old runs)")


def _shape(done: Collection) -> dict[str, Any]:
    removed = [
        {"id": r.id, "workflow": r.workflow, "status": r.status, "started_at": r.started_at.isoformat(),
         "run_dir": r.run_dir, "reason": r.why, "freed": r.freed}
        for r in done.removed
    ]  # fmt: skip
    return {
        "dry_run": done.dry_run,
        "removed": removed,
        "freed": done.freed,
        "kept": dict(done.kept),
        "problems": list(done.problems),
    }


def size_text(size: int) -> str:
    """`512 B`, `12.3 kB`, `1.5 GB` (powers of 1000, as `du --si` and `docker system df`)."""
    value = float(size)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if value < 1000 or unit == "TB":
            return f"{int(value)} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    raise AssertionError("unreachable")  # pragma: no cover
