"""A batch of engine events as rows of the record: merged per node and attempt, one executemany
a kind. The recorder's writer thread and the journals' replay (db/journals.py) write through it.

`merge` is plain Python: db/lite.py writes its rows with the stdlib's sqlite3. Only `write`,
through SQLAlchemy, imports it."""

from __future__ import annotations

import functools
import getpass
import os
import socket
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from wtflow._version import __version__
from wtflow.events import Event, NodeFinished, NodesAdded, NodeSpec, NodeStarted, RunFinished, RunStarted
from wtflow.status import Status

if TYPE_CHECKING:
    from sqlalchemy import Connection

# The columns naming a row of each table, in the order rows must be inserted.
KEYS = {"runs": ("id",), "nodes": ("run_id", "index"), "attempts": ("run_id", "node_index", "n"),
         "artifacts": ("run_id", "node_index", "attempt", "name")}  # fmt: skip


class Batch:
    """A batch's rows, merged: a node that started and ended within it is one INSERT, not an
    INSERT and two UPDATEs (most nodes of a fan-out of short commands)."""

    def __init__(self) -> None:
        self.inserts: dict[str, dict[tuple[Any, ...], dict[str, Any]]] = {t: {} for t in KEYS}
        self.updates: dict[str, dict[tuple[Any, ...], dict[str, Any]]] = {t: {} for t in KEYS}

    def insert(self, table: str, row: dict[str, Any]) -> None:
        self.inserts[table][tuple(row[c] for c in KEYS[table])] = row

    def update(self, table: str, key: tuple[Any, ...], **values: Any) -> None:
        row = self.inserts[table].get(key)
        if row is not None:
            row.update(values)
        else:
            self.updates[table].setdefault(key, {}).update(values)

    def new_rows(self) -> Iterator[tuple[str, tuple[str, ...], list[dict[str, Any]]]]:
        """Each table's new rows, in insertion order of the tables, grouped by their columns: an
        executemany takes its columns from its first row, and a row merged with a later update
        may have more than the others."""
        for table, rows in self.inserts.items():
            alike: dict[tuple[str, ...], list[dict[str, Any]]] = {}
            for row in rows.values():
                alike.setdefault(tuple(row), []).append(row)
            for columns, same in alike.items():
                yield table, columns, same

    def changes(self) -> Iterator[tuple[str, tuple[str, ...], list[tuple[tuple[Any, ...], dict[str, Any]]]]]:
        """Each table's updates (a row's key and its new values), grouped by the columns they set."""
        for table, updates in self.updates.items():
            alike: dict[tuple[str, ...], list[tuple[tuple[Any, ...], dict[str, Any]]]] = {}
            for key, values in updates.items():
                alike.setdefault(tuple(sorted(values)), []).append((key, values))
            for columns, same in alike.items():
                yield table, columns, same

    def execute(self, conn: Connection) -> None:
        from sqlalchemy import insert

        from wtflow.db.tables import metadata

        for table, _, rows in self.new_rows():
            conn.execute(insert(metadata.tables[table]), rows)
        for table, columns, changes in self.changes():
            params = [
                {
                    **{f"k_{c}": v for c, v in zip(KEYS[table], key, strict=True)},
                    **{f"v_{c}": values[c] for c in columns},
                }
                for key, values in changes
            ]
            conn.execute(_update(table, columns), params)


def write(conn: Connection, events: Iterable[Event], origin: dict[str, Any] | None = None) -> None:
    """Write a batch of events in one go: rows merged per node and attempt, one executemany a kind.

    `origin` (host, user, pid) says where a run replayed from its journal ran; else this process."""
    merge(events, origin).execute(conn)


def merge(events: Iterable[Event], origin: dict[str, Any] | None = None) -> Batch:
    """The rows a batch of events makes, merged per node and attempt."""
    batch = Batch()
    for event in events:
        if isinstance(event, RunStarted):
            batch.insert("runs", {**_run_row(event), **(origin or {})})
            for spec in event.nodes:
                batch.insert("nodes", _node_row(event.run_id, spec))
        elif isinstance(event, NodesAdded):  # dynamic children, returned by a PyFunc
            for spec in event.nodes:
                batch.insert("nodes", _node_row(event.run_id, spec))
        elif isinstance(event, NodeStarted):
            batch.insert("attempts", {
                "run_id": event.run_id, "node_index": event.index, "n": event.attempt,
                "status": Status.RUNNING.value, "exit_code": None, "pid": event.pid,
                "host": event.host or None, "started_at": event.started_at, "ended_at": None, "output_order": None,
                "digest": event.digest,
            })  # fmt: skip
            for name, path in (("stdout", event.stdout_path), ("stderr", event.stderr_path)):
                if path is not None:
                    batch.insert("artifacts", {"run_id": event.run_id, "node_index": event.index,
                                               "attempt": event.attempt, "name": name, "path": str(path), "size": 0,
                                               "kind": "stream", "sha256": None})  # fmt: skip
            first = {"started_at": event.started_at} if event.attempt == 1 else {}
            batch.update("nodes", (event.run_id, event.index), status=Status.RUNNING.value,
                         attempts=event.attempt, **first)  # fmt: skip
        elif isinstance(event, NodeFinished):
            if event.attempt > 0:
                key = (event.run_id, event.index, event.attempt)
                order = None if event.output_order is None else [list(o) for o in event.output_order]
                batch.update("attempts", key, status=event.status.value, exit_code=event.exit_code,
                             ended_at=event.ended_at, output_order=order)  # fmt: skip
                for name, size in (("stdout", event.stdout_size), ("stderr", event.stderr_size)):
                    if (*key, name) in batch.inserts["artifacts"] or size:
                        batch.update("artifacts", (*key, name), size=size)
                for kept in event.kept:
                    row_name = kept.name if kept.kind == "result" else f"{kept.name}/{kept.path.name}"
                    batch.insert("artifacts", {"run_id": event.run_id, "node_index": event.index,
                                               "attempt": event.attempt, "name": row_name, "path": str(kept.path),
                                               "size": kept.size, "kind": kept.kind, "sha256": kept.sha256})  # fmt: skip
            status = Status.RUNNING if event.will_retry else event.status
            batch.update("nodes", (event.run_id, event.index), status=status.value, exit_code=event.exit_code,
                         ended_at=event.ended_at, reason=event.reason)  # fmt: skip
        elif isinstance(event, RunFinished):
            batch.update("runs", (event.run_id,), status=event.status.value, exit_code=event.exit_code,
                         ended_at=event.ended_at)  # fmt: skip
    return batch


def _node_row(run_id: str, spec: NodeSpec) -> dict[str, Any]:
    return {
        "run_id": run_id, "index": spec.index, "name": spec.name,
        "path": "/".join(spec.path), "parent": spec.parent, "position": spec.position,
        "kind": spec.kind, "executes": spec.executes, "parallel": spec.parallel,
        "allow_failure": spec.allow_failure, "status": Status.PENDING.value, "exit_code": None,
        "attempts": 0, "started_at": None, "ended_at": None, "reason": None, "decision": spec.decision,
        "tags": list(spec.tags) or None, "depends_on": list(spec.depends_on) or None, "dynamic": spec.dynamic,
    }  # fmt: skip


def _run_row(event: RunStarted) -> dict[str, Any]:
    return {
        "id": event.run_id, "workflow": event.workflow, "status": Status.RUNNING.value, "exit_code": None,
        "started_at": event.started_at, "ended_at": None, "host": socket.gethostname(), "user": _user(),
        "pid": os.getpid(), "wtflow_version": __version__, "config": event.config,
        "run_dir": str(event.run_dir), "heartbeat_at": event.started_at, "resumed_from": event.resumed_from,
        "params": event.params, "provenance": event.provenance,
    }  # fmt: skip


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # a container user with no passwd entry
        return str(os.getuid())


@functools.cache
def _update(table: str, columns: tuple[str, ...]) -> Any:
    """UPDATE <table> SET <columns> WHERE <its key>, with bind names that cannot clash with columns."""
    from sqlalchemy import and_, bindparam, update

    from wtflow.db.tables import metadata

    t = metadata.tables[table]
    where = and_(*(t.c[c] == bindparam(f"k_{c}") for c in KEYS[table]))
    return update(t).where(where).values({c: bindparam(f"v_{c}") for c in columns})


def beat(conn: Connection, run_id: str) -> None:
    """A sign of life of a running run (schema.STALE judges it from another host)."""
    conn.execute(_update("runs", ("heartbeat_at",)), {"k_id": run_id, "v_heartbeat_at": datetime.now(UTC)})
