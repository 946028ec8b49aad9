"""The read side of the record: opened read-only, typed results, and it never writes.

No schema upgrade, no crash marking, no CREATE: a reader may be a user who can only read the
database (another user's `.wtflow`, a read-only mount, a SELECT-only PostgreSQL role), and a
web view must not change what it shows. A run whose wtflow process is gone reads as
`crashed` (by the writer's own rule, `schema.DeathRule`) without being written so.

SQLite is opened with `mode=ro` while its -wal file exists (a writer may be adding to it,
and the reader must see that), and `mode=ro&immutable=1` when it does not: `mode=ro` alone
must create the -shm file, which fails in a folder the reader cannot write, and
`immutable=1` alone would not see what a live writer has in the -wal file.
"""

from __future__ import annotations

import socket
import sqlite3
import urllib.parse
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, func, inspect, select
from sqlalchemy.engine import URL
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import NullPool

from wtflow.config import Config, mask_url
from wtflow.db import schema
from wtflow.db.tables import artifacts, attempts, nodes, runs
from wtflow.errors import LookupFailed, RecorderError, UsageError
from wtflow.status import Status

# A Row is a tuple, whose .index() method hides a column named "index": read it under this name.
_NODE_COLUMNS = [c for c in nodes.c if c.name != "index"] + [nodes.c.index.label("node_index")]
# Statuses a node marked allow_failure can end in without failing its run.
_ALLOWABLE = (Status.FAILED, Status.TIMED_OUT)
_SQLITE_HEADER = b"SQLite format 3\x00"


class NothingRecorded(LookupFailed):
    """The database does not exist yet: nothing has been recorded there."""


# -- the records -------------------------------------------------------------------------


@dataclass(frozen=True)
class OutputInfo:
    name: str  # stdout, stderr, result, or "<declared name>/<file name>"
    path: str
    size: int
    kind: str = "stream"  # stream, result, file
    sha256: str | None = None  # of a result or a declared file

    @property
    def artifact(self) -> str:
        """The artifact this belongs to: a declared file's row is named "<artifact>/<file>"."""
        return self.name.partition("/")[0]


@dataclass(frozen=True)
class AttemptInfo:
    n: int
    status: str
    exit_code: int | None
    pid: int | None
    started_at: datetime
    ended_at: datetime | None
    # (stream, byte count) in arrival order; None while it runs, or when too long to keep
    output_order: tuple[tuple[str, int], ...] | None
    outputs: Mapping[str, OutputInfo] = field(default_factory=dict)
    host: str | None = None  # where it ran: this machine's name, or a Dask worker's
    digest: str | None = None


@dataclass(frozen=True)
class NodeInfo:
    index: int
    path: str  # names joined by "/", the root's first
    name: str
    depth: int
    parent: int | None
    kind: str | None  # command, pyfunc, or None for a group
    executes: str | None
    parallel: bool
    allow_failure: bool
    status: str
    exit_code: int | None
    started_at: datetime | None
    ended_at: datetime | None
    attempts: tuple[AttemptInfo, ...] = ()
    reason: str | None = None  # why it was skipped
    decision: str | None = None
    tags: tuple[str, ...] = ()  # its own and its ancestors'
    depends_on: tuple[str, ...] = ()  # the paths of the nodes it waited for
    dynamic: bool = False  # added at run time by its parent's PyFunc

    @property
    def is_group(self) -> bool:
        return self.kind is None

    @property
    def folder(self) -> str:
        """The last part of its path: its name, or e.g. `twin-2` for a second sibling named `twin`."""
        return self.path.rsplit("/", 1)[-1]

    @property
    def failed_allowed(self) -> bool:
        """Failed, but marked allow_failure: it did not fail the run."""
        return self.allow_failure and self.status in _ALLOWABLE

    @property
    def shown_status(self) -> str:
        """The status as the CLI and the views show it: `failed (allowed)` for an allowed failure."""
        return f"{self.status} (allowed)" if self.failed_allowed else self.status

    @property
    def failed(self) -> bool:
        """Ended by its own failure (allowed or not), as opposed to cancelled or skipped."""
        return self.status in (*_ALLOWABLE, Status.CRASHED)


@dataclass(frozen=True)
class RunInfo:
    id: str
    workflow: str
    status: str  # `crashed` when recorded running by a process that is gone
    exit_code: int | None
    started_at: datetime
    ended_at: datetime | None
    host: str
    user: str
    pid: int
    wtflow_version: str
    config: Mapping[str, Any]
    run_dir: str
    heartbeat_at: datetime | None
    resumed_from: str | None = None
    params: Mapping[str, Any] | None = None
    provenance: Mapping[str, Any] | None = None


def output_state(run: RunInfo) -> str:
    """Where the run's folder is: `here`; `gone` when it was removed by hand (`wtflow gc` clears
    its record); `elsewhere` when it is not here and the run was recorded on another host."""
    if Path(run.run_dir).is_dir():
        return "here"
    return "gone" if run.host == socket.gethostname() else "elsewhere"


@dataclass(frozen=True)
class RunSummary:
    run: RunInfo
    counts: Mapping[str, int]  # executing nodes by shown status (`failed (allowed)` apart)


# -- opening -----------------------------------------------------------------------------


def record_url(config: Config) -> str:
    """The URL of the record the config names, or a UsageError when recording is off."""
    url = config.db.resolved_url(config.storage.resolved_state_dir())
    if url is None:
        raise UsageError(
            "recording is off (the database URL is empty), so there is no history; "
            "set WTFLOW_DB_URL to the database the runs were recorded in"
        )
    return url


@contextmanager
def open_record(url: str, *, missing_folder_is_empty: bool = False) -> Iterator[Reader]:
    """The record at `url`, read-only, checked to have this wtflow's schema.

    Raises NothingRecorded for a SQLite file that does not exist (also for a missing folder
    when `missing_folder_is_empty`: the default state folder of a project that never ran),
    RecorderError (a UsageError: one line, exit 2) when it cannot be read or has another schema."""
    engine = _open_engine(url, missing_folder_is_empty=missing_folder_is_empty)
    try:
        reader = Reader(engine, url)
        reader.check_schema()
        yield reader
    finally:
        engine.dispose()


def _open_engine(url: str, *, missing_folder_is_empty: bool) -> Engine:
    def make(parsed: URL) -> Engine:
        backend = parsed.get_backend_name()
        if backend == "sqlite":
            return _sqlite_engine(url, parsed.database or "", missing_folder_is_empty)
        connect_args: dict[str, Any] = {}
        if backend == "postgresql":
            # The server refuses any write in these sessions, whatever the role may do.
            connect_args = {"connect_timeout": 10, "options": "-c default_transaction_read_only=on"}
        # One connection kept for the polls of `logs --follow`, checked before each use.
        return create_engine(url, pool_size=1, max_overflow=1, pool_pre_ping=True, connect_args=connect_args)

    return schema.engine_for(url, make)


def _sqlite_engine(url: str, database: str, missing_folder_is_empty: bool) -> Engine:
    if not database or database == ":memory:" or database.startswith("file:"):
        return create_engine(url, poolclass=NullPool)
    path = Path(database)
    _check_readable(url, path, missing_folder_is_empty)
    quoted = urllib.parse.quote(str(path.absolute()))

    def connect() -> sqlite3.Connection:
        # Decided at each connection: `logs --follow` reconnects, and a run may start meanwhile.
        live = Path(f"{path}-wal").exists()
        mode = "mode=ro" if live else "mode=ro&immutable=1"
        conn = sqlite3.connect(f"file:{quoted}?{mode}", uri=True, timeout=schema.BUSY_MS / 1000)
        conn.execute("PRAGMA query_only=ON")
        return conn

    return create_engine("sqlite://", creator=connect, poolclass=NullPool)


def _check_readable(url: str, path: Path, missing_folder_is_empty: bool) -> None:
    try:
        with path.open("rb") as f:
            header = f.read(len(_SQLITE_HEADER))
    except FileNotFoundError:
        if _is_dir(path.parent) or missing_folder_is_empty:
            raise NothingRecorded(
                f"no runs recorded yet: database {str(path)!r} does not exist; "
                "run a workflow first, or point WTFLOW_DB_URL (or -c) at the database"
            ) from None
        raise RecorderError(
            f"database {url} cannot be opened: folder {str(path.parent)!r} does not exist; "
            "point WTFLOW_DB_URL (or --db-url) at the database the runs were recorded in"
        ) from None
    except IsADirectoryError:
        raise RecorderError(
            f"database {url} cannot be opened: {str(path)!r} is a folder; "
            "point WTFLOW_DB_URL at the database file (e.g. .wtflow/wtflow.db)"
        ) from None
    except OSError as e:
        raise RecorderError(
            f"database {url} cannot be read: {e.strerror or e}; "
            "ask its owner for read access, or point WTFLOW_DB_URL at another database"
        ) from None
    # Files of /proc and /sys say they are empty (size 0), which SQLite would read as an empty
    # database: their first bytes tell.
    if header and header != _SQLITE_HEADER:
        raise RecorderError(
            f"database {url} cannot be read: {str(path)!r} is not a SQLite database; "
            "point WTFLOW_DB_URL at the database the runs were recorded in"
        )


def _is_dir(path: Path) -> bool:
    try:
        return path.is_dir()
    except OSError:  # a folder we may not look into
        return False


# -- the queries -------------------------------------------------------------------------


class Reader:
    """Typed queries over the record; each opens a short read of its own, so that a reader
    that keeps going (`logs --follow`) never holds a transaction between them."""

    def __init__(self, engine: Engine, url: str) -> None:
        self._engine = engine
        self._url = url
        self._empty = False

    @contextmanager
    def _read(self) -> Iterator[Connection]:
        try:
            with self._engine.connect() as conn:
                yield conn
        except SQLAlchemyError as e:
            raise RecorderError(
                f"database {mask_url(self._url)} cannot be read: {schema.reason(e, self._url)}; "
                "check WTFLOW_DB_URL / [database] url"
            ) from None

    @property
    def empty(self) -> bool:
        """The database has no record yet (no tables): every query finds nothing."""
        return self._empty

    def check_schema(self) -> None:
        """This wtflow's schema, or a one-line error naming the fix (never an upgrade here)."""
        self._empty = False
        with self._read() as conn:
            current = schema.current_revision(conn)
            if current is None:
                # An empty database (made by `touch`, or a server database nobody recorded into).
                self._empty = not inspect(conn).has_table("runs")
                if self._empty:
                    return
        masked = mask_url(self._url)
        if current not in schema.KNOWN:
            raise RecorderError(
                f"database {masked} has schema revision {current!r}, newer than this wtflow knows; "
                "upgrade wtflow to read it"
            )
        if current != schema.HEAD:
            raise RecorderError(
                f"database {masked} has schema revision {current!r}, older than this wtflow's "
                f"{schema.HEAD!r}; run `wtflow db upgrade` to bring it up to date"
            )

    def recent_runs(
        self, *, workflow: str | None = None, status: str | None = None, limit: int = 20
    ) -> list[RunSummary]:
        """Newest first, each with its executing nodes counted by shown status.

        A status filter of `running` or `crashed` is judged after reading, as shown."""
        if self._empty:
            return []
        query = select(runs).order_by(runs.c.started_at.desc(), runs.c.id)
        if workflow is not None:
            query = query.where(runs.c.workflow == workflow)
        if status in (Status.RUNNING, Status.CRASHED):
            query = query.where(runs.c.status.in_([Status.RUNNING.value, Status.CRASHED.value]))
        elif status is not None:
            query = query.where(runs.c.status == status)
        judge = schema.DeathRule.now()
        with self._read() as conn:
            found: list[RunInfo] = []
            for row in conn.execute(query):
                run = _run(row, judge)
                if status is None or run.status == status:
                    found.append(run)
                if len(found) == limit:
                    break
            counts: dict[str, Counter[str]] = {run.id: Counter() for run in found}
            if found:
                query = (
                    select(nodes.c.run_id, nodes.c.status, nodes.c.allow_failure, func.count())
                    .where(nodes.c.run_id.in_(counts), nodes.c.kind.is_not(None))
                    .group_by(nodes.c.run_id, nodes.c.status, nodes.c.allow_failure)
                )
                crashed = {run.id for run in found if run.status == Status.CRASHED}
                for run_id, node_status, allowed, n in conn.execute(query):
                    shown = _node_status(node_status, run_id in crashed)
                    if allowed and shown in _ALLOWABLE:
                        shown = f"{shown} (allowed)"
                    counts[run_id][shown] += n
        return [RunSummary(run, dict(counts[run.id])) for run in found]

    def find_run(self, ref: str, *, workflow: str | None = None) -> RunInfo:
        """A run by full id, unique id prefix, or `last` (the newest, running or not; the
        newest of `workflow` when given)."""
        if self._empty:
            raise NothingRecorded("no runs recorded yet; run a workflow first (wtflow run)")
        ref = ref.strip().lower()
        judge = schema.DeathRule.now()
        if means_newest(ref):
            query = select(runs).order_by(runs.c.started_at.desc(), runs.c.id).limit(1)
            if workflow is not None:
                query = query.where(runs.c.workflow == workflow)
            with self._read() as conn:
                row = conn.execute(query).first()
            if row is None:
                if workflow is not None:
                    raise LookupFailed(
                        f"no runs of workflow {workflow!r} recorded; see `wtflow runs` for the recorded ones"
                    )
                raise NothingRecorded("no runs recorded yet; run a workflow first (wtflow run)")
            return _run(row, judge)
        if not ref or any(c not in "0123456789abcdef-" for c in ref):
            raise LookupFailed(
                f"run {ref!r} is not a run id; give an id or prefix from `wtflow runs`, or `last`"
            )
        ref = ref.replace("-", "")
        query = select(runs).where(runs.c.id.startswith(ref, autoescape=True)).limit(6)
        if workflow is not None:
            query = query.where(runs.c.workflow == workflow)
        with self._read() as conn:
            matches = list(conn.execute(query))
        if not matches:
            raise LookupFailed(f"no run with id {ref!r}; see `wtflow runs` for the recorded ones")
        if len(matches) > 1:
            ids = ", ".join(m.id[:12] for m in matches[:5])
            raise LookupFailed(f"run id prefix {ref!r} matches several runs ({ids}); give more characters")
        return _run(matches[0], judge)

    def newest_with_node(self, ref: str) -> RunInfo | None:
        """The newest run with a node `ref` as `find_node` reads it (a path, with or without the
        root's name, or a name): where `last` should have pointed when the newest run has none."""
        ref = ref.strip().strip("/")
        holds = (
            (nodes.c.path == ref) | nodes.c.path.endswith("/" + ref, autoescape=True) | (nodes.c.name == ref)
        )
        query = (
            select(runs)
            .where(runs.c.id.in_(select(nodes.c.run_id).where(holds)))
            .order_by(runs.c.started_at.desc(), runs.c.id)
            .limit(1)
        )
        with self._read() as conn:
            row = conn.execute(query).first()
        return None if row is None else _run(row, schema.DeathRule.now())

    def run(self, run_id: str) -> RunInfo:
        """The run afresh (for `logs --follow`, which watches it end)."""
        with self._read() as conn:
            row = conn.execute(select(runs).where(runs.c.id == run_id)).one()
        return _run(row, schema.DeathRule.now())

    def run_tree(self, run: RunInfo) -> list[NodeInfo]:
        """The run's nodes in tree order (depth first), each with its attempts and their outputs."""
        with self._read() as conn:
            node_rows = list(conn.execute(select(*_NODE_COLUMNS).where(nodes.c.run_id == run.id)))
            attempt_rows = list(
                conn.execute(
                    select(attempts)
                    .where(attempts.c.run_id == run.id)
                    .order_by(attempts.c.node_index, attempts.c.n)
                )
            )
            output_rows = list(conn.execute(select(artifacts).where(artifacts.c.run_id == run.id)))
        crashed = run.status == Status.CRASHED
        by_node = _attempts(attempt_rows, output_rows, crashed)
        infos = {row.node_index: _node(row, by_node.get(row.node_index, ()), crashed) for row in node_rows}
        children: dict[int | None, list[NodeInfo]] = {}
        position = {row.node_index: row.position for row in node_rows}
        for info in sorted(infos.values(), key=lambda n: position[n.index]):
            children.setdefault(info.parent, []).append(info)
        ordered: list[NodeInfo] = []
        stack = [(n, 0) for n in reversed(children.get(None, []))]
        while stack:
            info, depth = stack.pop()
            ordered.append(replace(info, depth=depth))
            stack.extend((c, depth + 1) for c in reversed(children.get(info.index, [])))
        return ordered

    def node_at(self, run: RunInfo, path: str) -> NodeInfo | None:
        """The node at `path` ('root/a/b') afresh, or None when the run has none there."""
        with self._read() as conn:
            index = conn.execute(
                select(nodes.c.index).where(nodes.c.run_id == run.id, nodes.c.path == path)
            ).scalar()
        return None if index is None else self.node(run, index)

    def node(self, run: RunInfo, index: int) -> NodeInfo:
        """One node afresh, with its attempts (for `logs --follow`, polling it)."""
        with self._read() as conn:
            row = conn.execute(
                select(*_NODE_COLUMNS).where(nodes.c.run_id == run.id, nodes.c.index == index)
            ).one()
            attempt_rows = list(
                conn.execute(
                    select(attempts)
                    .where(attempts.c.run_id == run.id, attempts.c.node_index == index)
                    .order_by(attempts.c.n)
                )
            )
            output_rows = list(
                conn.execute(
                    select(artifacts).where(artifacts.c.run_id == run.id, artifacts.c.node_index == index)
                )
            )
        crashed = run.status == Status.CRASHED
        return _node(row, _attempts(attempt_rows, output_rows, crashed).get(index, ()), crashed)


def means_newest(ref: str) -> bool:
    """Whether a run reference is `last` (or `latest`): the newest run, not an id."""
    return ref.strip().lower() in ("last", "latest")


def find_node(tree: Sequence[NodeInfo], ref: str) -> NodeInfo:
    """A node by tree path ('root/build/test'), path below the root, or name (or folder name,
    e.g. `twin-2`) when that is unique."""
    ref = ref.strip().strip("/")
    for info in tree:
        if info.path == ref or info.path.partition("/")[2] == ref:
            return info
    named = [n for n in tree if ref in (n.name, n.folder)]
    if len(named) == 1:
        return named[0]
    if named:
        paths = ", ".join(repr(n.path) for n in named[:5])
        raise LookupFailed(f"node name {ref!r} is ambiguous in this run ({paths}); give its path")
    runnable = [n for n in tree if not n.is_group]
    known = ", ".join(repr(n.path) for n in runnable[:8])
    more = ", ..." if len(runnable) > 8 else ""
    raise LookupFailed(f"no node {ref!r} in this run; nodes are: {known}{more}")


def below(tree: Sequence[NodeInfo], group: NodeInfo) -> list[NodeInfo]:
    """The executing nodes under `group`, in tree order."""
    prefix = group.path + "/"
    return [n for n in tree if n.path.startswith(prefix) and not n.is_group]


# -- rows to records ---------------------------------------------------------------------


def _run(row: Any, judge: schema.DeathRule) -> RunInfo:
    status = row.status
    if status == Status.RUNNING and judge.is_dead(row.host, row.pid, row.heartbeat_at):
        status = Status.CRASHED.value
    return RunInfo(
        id=row.id, workflow=row.workflow, status=status, exit_code=row.exit_code,
        started_at=row.started_at, ended_at=row.ended_at, host=row.host, user=row.user, pid=row.pid,
        wtflow_version=row.wtflow_version, config=row.config, run_dir=row.run_dir,
        heartbeat_at=row.heartbeat_at, resumed_from=row.resumed_from, params=row.params,
        provenance=row.provenance,
    )  # fmt: skip


def _node_status(status: str, run_crashed: bool) -> str:
    """What reap_dead_runs would write: a crashed run's running nodes and attempts crashed too."""
    return Status.CRASHED.value if run_crashed and status == Status.RUNNING else status


def _node(row: Any, node_attempts: Sequence[AttemptInfo], run_crashed: bool) -> NodeInfo:
    return NodeInfo(
        index=row.node_index, path=row.path, name=row.name, depth=0, parent=row.parent, kind=row.kind,
        executes=row.executes, parallel=row.parallel, allow_failure=row.allow_failure,
        status=_node_status(row.status, run_crashed), exit_code=row.exit_code,
        started_at=row.started_at, ended_at=row.ended_at, attempts=tuple(node_attempts), reason=row.reason,
        decision=row.decision, tags=tuple(row.tags or ()), depends_on=tuple(row.depends_on or ()), dynamic=bool(row.dynamic),
    )  # fmt: skip


def _attempts(
    attempt_rows: Sequence[Any], output_rows: Sequence[Any], run_crashed: bool
) -> dict[int, tuple[AttemptInfo, ...]]:
    outputs: dict[tuple[int, int], dict[str, OutputInfo]] = {}
    for row in output_rows:
        outputs.setdefault((row.node_index, row.attempt), {})[row.name] = OutputInfo(
            row.name, row.path, row.size, row.kind, row.sha256
        )
    found: dict[int, list[AttemptInfo]] = {}
    for row in attempt_rows:
        order = None if row.output_order is None else tuple((str(s), int(n)) for s, n in row.output_order)
        attempt = AttemptInfo(
            n=row.n, status=_node_status(row.status, run_crashed), exit_code=row.exit_code, pid=row.pid,
            started_at=row.started_at, ended_at=row.ended_at, output_order=order,
            outputs=outputs.get((row.node_index, row.n), {}), host=row.host, digest=row.digest,
        )  # fmt: skip
        found.setdefault(row.node_index, []).append(attempt)
    return {index: tuple(found_attempts) for index, found_attempts in found.items()}
