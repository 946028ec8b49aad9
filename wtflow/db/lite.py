"""A local SQLite record written through the stdlib's sqlite3, so that a recorded run never
imports SQLAlchemy: its import is 0.35 to 0.45 s of CPU on a 2-core machine, more than a whole
short run, and a run cannot end before its record is written.

The recorder's writer thread takes this way for a plain `sqlite:///PATH` record that is new or
already at HEAD, which is nearly every run. Anything else goes through SQLAlchemy (db/schema.py):
a schema to upgrade, a file with tables this wtflow did not make (`open_record` says so by
returning None), and runs of a dead wtflow to settle from their journals, which the recorder
does once this run's first batch is in.

SQLAlchemy stays the source of the SQL: `SCHEMA` is what tables.py compiles to for SQLite, and
values are stored as SQLAlchemy stores them (naive UTC `DATETIME` text, JSON text), so a record
written either way reads the same. Tests compare the schema and the rows the two write.
"""

from __future__ import annotations

import contextlib
import functools
import json
import sqlite3
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from wtflow.config import mask_url
from wtflow.db import rows
from wtflow.db.liveness import DeathRule
from wtflow.db.revisions import HEAD
from wtflow.db.sqlite_file import BUSY_MS
from wtflow.errors import RecorderError
from wtflow.events import Event

# tables.py compiled for SQLite (CreateTable, CreateIndex), and the table Alembic keeps its revision in.
SCHEMA = (
    "CREATE TABLE runs (id VARCHAR(32) NOT NULL, workflow TEXT NOT NULL, status VARCHAR(16) NOT NULL, "
    "exit_code INTEGER, started_at DATETIME NOT NULL, ended_at DATETIME, host TEXT NOT NULL, "
    "user TEXT NOT NULL, pid INTEGER NOT NULL, wtflow_version VARCHAR(32) NOT NULL, config JSON NOT NULL, "
    "run_dir TEXT NOT NULL, heartbeat_at DATETIME, params JSON, provenance JSON, resumed_from VARCHAR(32), "
    "PRIMARY KEY (id))",
    "CREATE INDEX ix_runs_workflow_started_at ON runs (workflow, started_at)",
    "CREATE INDEX ix_runs_started_at ON runs (started_at)",
    'CREATE TABLE nodes (run_id VARCHAR(32) NOT NULL, "index" INTEGER NOT NULL, name TEXT NOT NULL, '
    "path TEXT NOT NULL, parent INTEGER, position INTEGER NOT NULL, kind VARCHAR(16), executes TEXT, "
    "parallel BOOLEAN NOT NULL, allow_failure BOOLEAN NOT NULL, status VARCHAR(16) NOT NULL, exit_code INTEGER, "
    "attempts INTEGER NOT NULL, started_at DATETIME, ended_at DATETIME, reason TEXT, decision TEXT, tags JSON, "
    'depends_on JSON, dynamic BOOLEAN, PRIMARY KEY (run_id, "index"), '
    "FOREIGN KEY(run_id) REFERENCES runs (id) ON DELETE CASCADE)",
    "CREATE TABLE attempts (run_id VARCHAR(32) NOT NULL, node_index INTEGER NOT NULL, n INTEGER NOT NULL, "
    "status VARCHAR(16) NOT NULL, exit_code INTEGER, pid INTEGER, started_at DATETIME NOT NULL, "
    "ended_at DATETIME, output_order JSON, host TEXT, digest VARCHAR(80), PRIMARY KEY (run_id, node_index, n), "
    'FOREIGN KEY(run_id, node_index) REFERENCES nodes (run_id, "index") ON DELETE CASCADE)',
    "CREATE TABLE artifacts (run_id VARCHAR(32) NOT NULL, node_index INTEGER NOT NULL, attempt INTEGER NOT NULL, "
    "name TEXT NOT NULL, path TEXT NOT NULL, size BIGINT NOT NULL, kind VARCHAR(16) DEFAULT 'stream' NOT NULL, "
    "sha256 VARCHAR(64), PRIMARY KEY (run_id, node_index, attempt, name), "
    "FOREIGN KEY(run_id, node_index, attempt) REFERENCES attempts (run_id, node_index, n) ON DELETE CASCADE)",
)
STAMP = (
    "CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL, "
    "CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num))"
)

# The columns SQLAlchemy converts on the way in (tables.py's UTCDateTime and JSON).
DATETIMES = {
    "runs": {"started_at", "ended_at", "heartbeat_at"},
    "nodes": {"started_at", "ended_at"},
    "attempts": {"started_at", "ended_at"},
    "artifacts": set(),
}
JSONS = {
    "runs": {"config", "params", "provenance"},
    "nodes": {"tags", "depends_on"},
    "attempts": {"output_order"},
    "artifacts": set(),
}


def _converter(table: str, column: str) -> Callable[[Any], Any] | None:
    """How SQLAlchemy binds a value of this column on SQLite: a datetime as naive UTC text, a JSON
    value as its text (None included, as the JSON type's `none_as_null=False` does)."""
    if column in JSONS[table]:
        return json.dumps
    if column in DATETIMES[table]:
        return _time
    return None


def _time(value: datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")


@functools.cache
def _conversions(table: str, columns: tuple[str, ...]) -> tuple[tuple[int, Callable[[Any], Any]], ...]:
    """Where in a row of these columns a value needs converting, and how: most need none."""
    found = ((i, _converter(table, c)) for i, c in enumerate(columns))
    return tuple((i, convert) for i, convert in found if convert is not None)


def _values(table: str, columns: tuple[str, ...], values: Iterable[Any]) -> tuple[Any, ...]:
    out = list(values)
    for i, convert in _conversions(table, columns):
        out[i] = convert(out[i])
    return tuple(out)


class Record:
    """An open local record, written from the recorder's writer thread: one transaction a batch."""

    def __init__(self, conn: sqlite3.Connection, *, dead_runs: bool = False) -> None:
        self._conn = conn
        # Runs left 'running' by a process that is gone: settled through SQLAlchemy, but only
        # once this run's first batch is in (a SIGKILL while SQLAlchemy loads lost the run).
        self.dead_runs = dead_runs

    def write(self, events: Iterable[Event], beat: str | None = None) -> None:
        batch = rows.merge(events)
        with _transaction(self._conn) as conn:
            for table, columns, new in batch.new_rows():
                conn.executemany(
                    _insert(table, columns), [_values(table, columns, row.values()) for row in new]
                )
            for table, columns, changes in batch.changes():
                params = [
                    (*_values(table, columns, map(values.get, columns)), *key) for key, values in changes
                ]
                conn.executemany(_update(table, columns), params)
            if beat:
                conn.execute(_update("runs", ("heartbeat_at",)), (_time(datetime.now(UTC)), beat))

    def close(self) -> None:
        self._conn.close()


@functools.cache
def _insert(table: str, columns: tuple[str, ...]) -> str:
    names = ", ".join(f'"{c}"' for c in columns)
    return f'INSERT INTO "{table}" ({names}) VALUES ({", ".join("?" * len(columns))})'


@functools.cache
def _update(table: str, columns: tuple[str, ...]) -> str:
    sets = ", ".join(f'"{c}" = ?' for c in columns)
    where = " AND ".join(f'"{c}" = ?' for c in rows.KEYS[table])
    return f'UPDATE "{table}" SET {sets} WHERE {where}'


@contextlib.contextmanager
def _transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """BEGIN IMMEDIATE … COMMIT (as schema's engines begin). When anything fails, the COMMIT
    included, ROLLBACK unless SQLite has rolled back already (a full disk does), so the next
    batch can begin, and the first error is the one said."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
        raise


def open_record(url: str, path: Path) -> Record | None:
    """The record in the SQLite file `path` (created with the schema when empty), ready to write;
    None when it needs SQLAlchemy first (an older schema, foreign tables). Dead runs to settle
    do not hold it up: `Record.dead_runs` says they are there.
    A file that cannot be used is a RecorderError, said as db/schema.py says it."""
    try:
        conn = sqlite3.connect(path, timeout=BUSY_MS / 1000, isolation_level=None, check_same_thread=False)
    except sqlite3.Error as e:
        raise _unusable(url, e) from None
    try:
        _configure(conn)
        with _transaction(conn):
            ready = _prepare(conn)
    except sqlite3.Error as e:
        conn.close()
        raise _unusable(url, e) from None
    except BaseException:
        conn.close()
        raise
    if ready is None:
        conn.close()
        return None
    return Record(conn, dead_runs=not ready)


def _configure(conn: sqlite3.Connection) -> None:
    # As schema._sqlite_engine configures each connection: see the reasons there.
    conn.execute(f"PRAGMA busy_timeout={BUSY_MS}")
    conn.execute("PRAGMA synchronous=NORMAL")
    if conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
        conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA foreign_keys=ON")


def _prepare(conn: sqlite3.Connection) -> bool | None:
    """Create the schema in an empty file and stamp it HEAD; say whether the record is ready
    (False: ready, with dead runs to settle; None: its schema needs SQLAlchemy)."""
    tables = {name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    if not tables:
        for statement in (*SCHEMA, STAMP):
            conn.execute(statement)
        conn.execute("INSERT INTO alembic_version (version_num) VALUES (?)", (HEAD,))
        return True
    if "alembic_version" not in tables:
        return None
    if conn.execute("SELECT version_num FROM alembic_version").fetchall() != [(HEAD,)]:
        return None
    judge = DeathRule.now()
    running = conn.execute("SELECT host, pid, heartbeat_at FROM runs WHERE status = 'running'").fetchall()
    return not any(judge.is_dead(host, pid, _read_time(beat)) for host, pid, beat in running)


def _read_time(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text).replace(tzinfo=UTC)


def _unusable(url: str, error: sqlite3.Error) -> RecorderError:
    return RecorderError(
        f"database {mask_url(url)} cannot be used: {reason(error)}; "
        "check WTFLOW_DB_URL / [database] url, or set it empty to run without recording"
    )


def reason(error: BaseException) -> str:
    """The first line of what sqlite3 said."""
    return (str(error).strip().splitlines() or [type(error).__name__])[0]
