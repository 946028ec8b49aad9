"""`wtflow runs`, `wtflow show`, `wtflow logs`, `wtflow db upgrade`: reading the record."""

from __future__ import annotations

import argparse
import contextlib
import json
import shutil
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from wtflow.artifacts import ensure_private_dir
from wtflow.config import Config, mask_url
from wtflow.errors import LookupFailed, UsageError
from wtflow.status import Status
from wtflow.terminal import color_wanted, paint, paint_status

FOLLOW_POLL = 0.2


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the history commands; each sets `handler(args, config) -> int` as its default."""
    runs = subparsers.add_parser("runs", help="recent runs, newest first")
    runs.add_argument("-w", "--workflow", help="only runs of this workflow")
    runs.add_argument("-s", "--status", choices=[s.value for s in Status], help="only runs that ended so")
    runs.add_argument("-n", "--limit", type=_positive, default=20, help="how many runs (default 20)")
    runs.add_argument("--json", action="store_true", help="one JSON array, for scripts")
    runs.set_defaults(handler=cmd_runs)

    show = subparsers.add_parser("show", help="the tree of one run: status, exit code, attempts, time")
    show.add_argument("run", nargs="?", default="last", help="run id, unique prefix, or last (default)")
    show.add_argument("--json", action="store_true", help="one JSON object, for scripts")
    show.set_defaults(handler=cmd_show)

    logs = subparsers.add_parser("logs", help="a node's captured output")
    logs.add_argument("run", help="run id, unique prefix, or last")
    logs.add_argument("node", nargs="?", help="node path (root/a/b), path below the root, or unique name")
    which = logs.add_mutually_exclusive_group()
    which.add_argument(
        "--stderr", dest="streams", action="store_const", const=("stderr",), help="stderr only"
    )
    which.add_argument("--both", dest="streams", action="store_const", const=("stdout", "stderr"),
                       help="stdout and stderr interleaved as they arrived")  # fmt: skip
    logs.add_argument("--attempt", type=_positive, help="attempt number (default: the last)")
    logs.add_argument("-f", "--follow", action="store_true", help="keep printing while the node runs")
    logs.set_defaults(handler=cmd_logs, streams=("stdout",))

    db = subparsers.add_parser("db", help="the database itself")
    db_commands = db.add_subparsers(dest="db_command", required=True, metavar="COMMAND")
    upgrade = db_commands.add_parser("upgrade", help="bring the schema up to this wtflow's version")
    upgrade.set_defaults(handler=cmd_db_upgrade)


def _positive(raw: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{raw!r} is not a whole number >= 1")
    return value


# -- opening the record --------------------------------------------------------------------


def database_url(config: Config) -> str:
    url = config.db.resolved_url(config.storage.resolved_state_dir())
    if url is None:
        raise UsageError(
            "recording is off (the database URL is empty), so there is no history; "
            "set WTFLOW_DB_URL to the database the runs were recorded in"
        )
    return url


@contextmanager
def _session(config: Config) -> Iterator[Any]:
    from wtflow.db import schema

    url = database_url(config)
    path = _missing_sqlite_file(url)
    if path is not None:
        raise LookupFailed(
            f"no runs recorded yet: database {str(path)!r} does not exist; "
            "run a workflow first, or point WTFLOW_DB_URL (or -c) at the database"
        )
    engine = schema.connect(url, writer=False)
    try:
        with engine.connect() as conn:
            yield conn
    finally:
        engine.dispose()


def _missing_sqlite_file(url: str) -> Path | None:
    """The path of a SQLite database that does not exist yet (reading must not create it)."""
    if not url.startswith("sqlite:///"):
        return None
    path = Path(url.removeprefix("sqlite:///").split("?", 1)[0])
    return None if path.exists() else path


# -- the commands --------------------------------------------------------------------------


def cmd_runs(args: argparse.Namespace, config: Config) -> int:
    from wtflow.db.queries import recent_runs

    if _missing_sqlite_file(database_url(config)):  # nothing has run here yet: an empty list
        print("[]" if args.json else "no runs recorded yet")
        return 0
    with _session(config) as session:
        views = recent_runs(session, workflow=args.workflow, status=args.status, limit=args.limit)
        if args.json:
            _print_json([_run_json(v.run, v.counts) for v in views])
            return 0
        if not views:
            print("no runs recorded" + (" matching the filters" if args.workflow or args.status else ""))
            return 0
        paint = Painter.for_stream(sys.stdout, args)
        rows = [("ID", "WORKFLOW", "STARTED", "DURATION", "STATUS", "NODES")]
        for v in views:
            counts = ", ".join(
                f"{n} {s}" for s, n in sorted(v.counts.items(), key=lambda i: _ORDER.get(i[0], 9))
            )
            rows.append((v.run.id[:8], v.run.workflow, _local(v.run.started_at),
                         _duration(v.run.started_at, v.run.ended_at, v.run.status), v.run.status, counts))  # fmt: skip
        for i, row in enumerate(_columns(rows)):
            print(paint.status(row, views[i - 1].run.status) if i else paint.bold(row))
    return 0


def cmd_show(args: argparse.Namespace, config: Config) -> int:
    from wtflow.db.queries import find_run, run_tree

    with _session(config) as session:
        run = find_run(session, args.run)
        nodes = run_tree(session, run.id)
        if args.json:
            _print_json({**_run_json(run, None), "nodes": [_node_json(n) for n in nodes]})
            return 0
        paint = Painter.for_stream(sys.stdout, args)
        ended = f" (exit {run.exit_code})" if run.exit_code is not None else ""
        print(paint.status(f"run {run.id}  {run.workflow}  {run.status}{ended}", run.status))
        print(f"started {_local(run.started_at)}  took {_duration(run.started_at, run.ended_at, run.status)}  "
              f"on {run.user}@{run.host}  wtflow {run.wtflow_version}")  # fmt: skip
        print(f"output  {run.run_dir}")
        print()
        rows = []
        for node in nodes:
            row = node.row
            extra = f"attempts {len(node.attempts)}" if len(node.attempts) > 1 else ""
            extra += "  (allowed to fail)" if row.allow_failure and Status(row.status).is_failure else ""
            elsewhere = sorted({a.row.host for a in node.attempts if a.row.host and a.row.host != run.host})
            extra += f"  on {', '.join(elsewhere)}" if elsewhere else ""  # a Dask worker, say
            rows.append(("  " * node.depth + row.name, row.status, _exit(row.exit_code),
                         _duration(row.started_at, row.ended_at, row.status) if row.started_at else "", extra))  # fmt: skip
        for node, line in zip(nodes, _columns(rows), strict=True):
            print(paint.status(line.rstrip(), node.row.status))
    return 0


def cmd_logs(args: argparse.Namespace, config: Config) -> int:
    from wtflow.db.queries import attempt_of, find_node, find_run, run_tree

    out = sys.stdout.buffer
    with _session(config) as session:
        run = find_run(session, args.run)
        nodes = [n for n in run_tree(session, run.id) if n.row.kind is not None]
        if args.node is None and len(nodes) != 1:
            if args.follow:
                raise UsageError("--follow needs a node; name one after the run id")
            for node in nodes:  # every node's output, each under a header, as `tail` does for files
                attempt = node.attempts[-1] if node.attempts else None
                for stream in args.streams:
                    artifact = attempt.outputs.get(stream) if attempt else None
                    if artifact is not None and artifact.size:
                        label = node.row.path + ("" if stream == "stdout" else " (stderr)")
                        out.write(f"==> {label} <==\n".encode())
                        _copy(Path(artifact.path), out)
            return 0
        node = find_node(nodes, args.node) if args.node is not None else nodes[0]
        attempt = attempt_of(session, run.id, node.row.node_index, args.attempt)
        if attempt is None:
            if args.attempt is not None:
                raise LookupFailed(
                    f"node {node.row.path!r} has no attempt {args.attempt}; it ran {len(node.attempts)}"
                )
            if not args.follow:
                raise LookupFailed(
                    f"node {node.row.path!r} did not run ({node.row.status}); it has no output"
                )
        if args.follow:
            return _follow(session, run.id, node.row.node_index, args.attempt, args.streams[-1], out)
        assert attempt is not None
        if (
            len(args.streams) > 1
            and attempt.row.output_order
            and set(attempt.outputs) == {"stdout", "stderr"}
        ):
            _interleave(
                {name: Path(a.path) for name, a in attempt.outputs.items()}, attempt.row.output_order, out
            )
            return 0
        for stream in args.streams:
            artifact = attempt.outputs.get(stream)
            if artifact is not None:
                if len(args.streams) > 1:
                    out.write(f"==> {stream} <==\n".encode())
                _copy(Path(artifact.path), out)
    return 0


def cmd_db_upgrade(args: argparse.Namespace, config: Config) -> int:
    from wtflow.db import schema

    url = database_url(config)
    if config.db.url is None:  # the default database lives in wtflow's own state folder
        ensure_private_dir(config.storage.resolved_state_dir())
    schema.connect(url).dispose()
    print(f"database {mask_url(url)} is at schema revision {schema.HEAD} (the newest)")
    return 0


# -- output --------------------------------------------------------------------------------


def _copy(path: Path, out: IO[bytes]) -> None:
    try:
        with path.open("rb") as f:
            shutil.copyfileobj(f, out, 1 << 20)
    except FileNotFoundError:
        raise _gone(path) from None
    out.flush()


def _follow(session: Any, run_id: str, node_index: int, n: int | None, stream: str, out: IO[bytes]) -> int:
    """Print the stream as it grows, from the node's first attempt (or attempt `n`) on, moving
    to each retry's attempt once the one before has ended, until the node has ended."""
    from wtflow.db.queries import attempt_of, node_status

    current, offset = n or 1, 0
    if current > 1:
        out.write(f"==> attempt {current} <==\n".encode())
    try:
        while True:
            status = Status(node_status(session, run_id, node_index))
            attempt = attempt_of(session, run_id, node_index, current)
            ended = attempt is not None and Status(attempt.row.status).is_final
            later = n is None and ended and attempt_of(session, run_id, node_index, current + 1) is not None
            session.rollback()  # end the read so the writer is never held up
            artifact = attempt.outputs.get(stream) if attempt else None
            if artifact is not None:
                offset += _copy_from(Path(artifact.path), offset, out)
            if later:
                current, offset = current + 1, 0
                out.write(f"==> attempt {current} <==\n".encode())
                continue
            if (ended and (n is not None or status.is_final)) or (attempt is None and status.is_final):
                if attempt is None:
                    print(f"wtflow: the node ended {status} without running", file=sys.stderr)
                return 0
            time.sleep(FOLLOW_POLL)
    except KeyboardInterrupt:
        return 130


def _interleave(paths: dict[str, Path], order: list[list[Any]], out: IO[bytes]) -> None:
    """Both streams as they arrived (the order the recorder kept), as the terminal showed them."""
    with contextlib.ExitStack() as stack:
        try:
            files = {name: stack.enter_context(path.open("rb")) for name, path in paths.items()}
        except FileNotFoundError as e:
            raise _gone(e.filename) from None
        for stream, size in order:
            while size > 0:
                chunk = files[stream].read(min(size, 1 << 20))
                if not chunk:
                    break
                out.write(chunk)
                size -= len(chunk)
        for f in files.values():  # anything written after the order was taken
            shutil.copyfileobj(f, out, 1 << 20)
    out.flush()


def _gone(path: object) -> LookupFailed:
    return LookupFailed(
        f"output file {str(path)!r} is gone (moved or deleted); the record still points there"
    )


def _copy_from(path: Path, offset: int, out: IO[bytes]) -> int:
    try:
        with path.open("rb") as f:
            f.seek(offset)
            data = f.read()
    except FileNotFoundError:
        return 0
    out.write(data)
    out.flush()
    return len(data)


def _print_json(value: object) -> None:
    json.dump(value, sys.stdout, indent=2, default=str)
    sys.stdout.write("\n")


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _seconds(start: datetime | None, end: datetime | None) -> float | None:
    return round((end - start).total_seconds(), 3) if start and end else None


def _run_json(run: Any, counts: dict[str, int] | None) -> dict[str, Any]:
    out = {
        "id": run.id, "workflow": run.workflow, "status": run.status, "exit_code": run.exit_code,
        "started_at": _iso(run.started_at), "ended_at": _iso(run.ended_at),
        "duration": _seconds(run.started_at, run.ended_at), "host": run.host, "user": run.user,
        "wtflow_version": run.wtflow_version, "run_dir": run.run_dir, "config": run.config,
    }  # fmt: skip
    if counts is not None:
        out["nodes"] = dict(counts)
    return out


def _node_json(node: Any) -> dict[str, Any]:
    row = node.row
    return {
        "path": row.path, "name": row.name, "depth": node.depth, "kind": row.kind, "executes": row.executes,
        "allow_failure": row.allow_failure, "status": row.status, "exit_code": row.exit_code,
        "started_at": _iso(row.started_at), "ended_at": _iso(row.ended_at),
        "duration": _seconds(row.started_at, row.ended_at),
        "attempts": [
            {"n": a.row.n, "status": a.row.status, "exit_code": a.row.exit_code, "pid": a.row.pid, "host": a.row.host,
             "started_at": _iso(a.row.started_at), "ended_at": _iso(a.row.ended_at),
             "duration": _seconds(a.row.started_at, a.row.ended_at),
             "outputs": {name: {"path": o.path, "size": o.size} for name, o in a.outputs.items()}}
            for a in node.attempts
        ],
    }  # fmt: skip


_ORDER = {s.value: i for i, s in enumerate([Status.FAILED, Status.TIMED_OUT, Status.CRASHED, Status.CANCELLED,
                                            Status.RUNNING, Status.SUCCEEDED, Status.SKIPPED, Status.PENDING])}  # fmt: skip


def _local(value: datetime) -> str:
    return value.astimezone().strftime("%Y-%m-%d %H:%M:%S")


def _duration(start: datetime | None, end: datetime | None, status: str) -> str:
    if start is None:
        return ""
    if end is None:
        if status != Status.RUNNING:
            return "?"
        end = datetime.now(UTC)
    seconds = (end - start).total_seconds()
    if seconds < 60:
        text = f"{seconds:.1f}s"
    elif seconds < 3600:
        text = f"{int(seconds // 60)}m{int(seconds % 60):02d}s"
    else:
        text = f"{int(seconds // 3600)}h{int(seconds % 3600 // 60):02d}m"
    return text + ("+" if status == Status.RUNNING else "")


def _exit(code: int | None) -> str:
    if code is None:
        return ""
    if code < 0:
        import signal

        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit {code}"


def _columns(rows: Sequence[tuple[str, ...]]) -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return ["  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip() for r in rows]


class Painter:
    """ANSI colour for statuses when writing to a terminal (NO_COLOR and --color respected)."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled

    @classmethod
    def for_stream(cls, stream: IO[str], args: argparse.Namespace) -> Painter:
        return cls(color_wanted(getattr(args, "color", None) or "auto", stream))

    def status(self, text: str, status: str) -> str:
        return paint_status(text, status, self.enabled)

    def bold(self, text: str) -> str:
        return paint(text, "bold", self.enabled)
