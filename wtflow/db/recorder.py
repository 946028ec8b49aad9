"""The recorder: an engine listener writing the run to the database from a thread of its own.

`handle` only enqueues, so the event loop never waits on SQL. The writer thread takes
whatever has queued up and writes it in one transaction, so a busy fan-out costs a few
commits a second rather than one per event. If the database fails mid-run, the run goes on
(its output is on disk regardless); the writer keeps what it could not write, retries, and
says at the end what is missing.
"""

from __future__ import annotations

import getpass
import os
import queue
import socket
import threading
import time
from collections.abc import Iterable
from typing import Any

from sqlalchemy import Connection, Table, and_, bindparam, func, insert, update
from sqlalchemy.exc import SQLAlchemyError

import wtflow
from wtflow.config import mask_url
from wtflow.db import schema
from wtflow.db.tables import Base
from wtflow.errors import RecorderError
from wtflow.events import Event, NodeFinished, NodeStarted, OutputReceived, RunFinished, RunStarted
from wtflow.status import Status

_STOP = object()
BATCH_WINDOW = 0.05  # seconds to let events gather before a transaction
RETRY_EVERY = 1.0
MAX_SEGMENTS = (
    10_000  # past this many stdout/stderr alternations, `logs --both` shows them one after the other
)
CLOSE_TIMEOUT = 60.0

RUNS, NODES, ATTEMPTS, ARTIFACTS = (
    Base.metadata.tables[t] for t in ("runs", "nodes", "attempts", "artifacts")
)


class Recorder:
    """Records every run, node, attempt and artifact; `error` says what could not be recorded."""

    def __init__(self, engine: Any, url: str) -> None:
        self._engine = engine
        self._url = mask_url(url)
        self._queue: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._run_dir = ""
        self.error: RecorderError | None = None
        self._closing = threading.Event()
        self._thread = threading.Thread(target=self._write_loop, name="wtflow-recorder", daemon=True)
        self._thread.start()

    @classmethod
    def connect(cls, url: str) -> Recorder:
        """Reach the database and bring its schema up to date, or raise RecorderError before anything runs."""
        return cls(schema.connect(url), url)

    wants_output = False  # the bytes are in the artifact files; the engine says how they alternated

    def handle(self, event: Event) -> None:
        if isinstance(event, OutputReceived):
            return
        if isinstance(event, RunStarted):
            self._run_dir = str(event.run_dir)
        self._queue.put(event)

    def close(self) -> None:
        self._closing.set()
        self._queue.put(_STOP)
        self._thread.join(CLOSE_TIMEOUT)
        if self._thread.is_alive():
            self.error = RecorderError(f"database {self._url} did not answer within {CLOSE_TIMEOUT:.0f}s")
        self._engine.dispose()

    # -- the writer thread ---------------------------------------------------------------

    def _write_loop(self) -> None:
        pending: list[Event] = []
        retry_at = 0.0
        while True:
            item = self._queue.get()
            if item is not _STOP:
                self._closing.wait(BATCH_WINDOW)  # let a batch gather, but never hold up the end of a run
            items = [item]
            while not self._queue.empty():
                items.append(self._queue.get())
            stop = _STOP in items
            pending.extend(e for e in items if e is not _STOP)  # type: ignore[misc]
            if pending and (stop or time.monotonic() >= retry_at):
                try:
                    with self._engine.begin() as conn:
                        write(conn, pending)
                except SQLAlchemyError as e:
                    retry_at = time.monotonic() + RETRY_EVERY
                    self.error = RecorderError(
                        f"database {self._url} stopped taking records ({schema.reason(e)}); "
                        f"{len(pending)} events are not recorded; the output is complete in {self._run_dir}"
                    )
                else:
                    pending.clear()
                    self.error = None
            if stop:
                return


def write(conn: Connection, events: Iterable[Event]) -> None:
    """Write a batch of events in order, grouping statements of a kind into one executemany."""
    ops: list[tuple[Any, list[dict[str, Any]]]] = []

    def add(statement: Any, params: dict[str, Any]) -> None:
        if ops and ops[-1][0] is statement:
            ops[-1][1].append(params)
        else:
            ops.append((statement, [params]))

    for event in events:
        if isinstance(event, RunStarted):
            add(_INSERT_RUN, _run_row(event))
            for spec in event.nodes:
                add(_INSERT_NODE, {
                    "run_id": event.run_id, "index": spec.index, "name": spec.path[-1],
                    "path": "/".join(spec.path), "parent": spec.parent, "position": spec.position,
                    "kind": spec.kind, "executes": spec.executes, "parallel": spec.parallel,
                    "allow_failure": spec.allow_failure, "status": Status.PENDING.value, "exit_code": None,
                    "attempts": 0, "started_at": None, "ended_at": None,
                })  # fmt: skip
        elif isinstance(event, NodeStarted):
            key = {"b_run": event.run_id, "b_node": event.index}
            add(_INSERT_ATTEMPT, {
                "run_id": event.run_id, "node_index": event.index, "n": event.attempt,
                "status": Status.RUNNING.value, "exit_code": None, "pid": event.pid,
                "started_at": event.started_at, "ended_at": None,
            })  # fmt: skip
            for name, path in (("stdout", event.stdout_path), ("stderr", event.stderr_path)):
                if path is not None:
                    add(_INSERT_ARTIFACT, {"run_id": event.run_id, "node_index": event.index,
                                           "attempt": event.attempt, "name": name, "path": str(path), "size": 0})  # fmt: skip
            add(_NODE_STARTED, {**key, "b_attempts": event.attempt, "b_started": event.started_at})
        elif isinstance(event, NodeFinished):
            key = {"b_run": event.run_id, "b_node": event.index}
            if event.attempt > 0:
                attempt = {**key, "b_n": event.attempt}
                order = None if event.output_order is None else [list(o) for o in event.output_order]
                add(_ATTEMPT_FINISHED, {**attempt, "b_status": event.status.value, "b_exit": event.exit_code,
                                        "b_ended": event.ended_at, "b_order": order})  # fmt: skip
                for name, size in (("stdout", event.stdout_size), ("stderr", event.stderr_size)):
                    add(_ARTIFACT_SIZE, {**attempt, "b_name": name, "b_size": size})
            status = (Status.RUNNING if event.will_retry else event.status).value
            add(
                _NODE_FINISHED,
                {**key, "b_status": status, "b_exit": event.exit_code, "b_ended": event.ended_at},
            )
        elif isinstance(event, RunFinished):
            add(_RUN_FINISHED, {"b_run": event.run_id, "b_status": event.status.value, "b_exit": event.exit_code,
                                "b_ended": event.ended_at})  # fmt: skip
    for statement, params in ops:
        conn.execute(statement, params)


def _run_row(event: RunStarted) -> dict[str, Any]:
    return {
        "id": event.run_id, "workflow": event.workflow, "status": Status.RUNNING.value, "exit_code": None,
        "started_at": event.started_at, "ended_at": None, "host": socket.gethostname(), "user": _user(),
        "pid": os.getpid(), "wtflow_version": wtflow.__version__, "config": event.config,
        "run_dir": str(event.run_dir),
    }  # fmt: skip


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # a container user with no passwd entry
        return str(os.getuid())


def _attempt_key(table: Table) -> Any:
    return and_(table.c.run_id == bindparam("b_run"), table.c.node_index == bindparam("b_node"),
                (table.c.n if table is ATTEMPTS else table.c.attempt) == bindparam("b_n"))  # fmt: skip


_INSERT_RUN = insert(RUNS)
_INSERT_NODE = insert(NODES)
_INSERT_ATTEMPT = insert(ATTEMPTS)
_INSERT_ARTIFACT = insert(ARTIFACTS)
_THIS_NODE = and_(NODES.c.run_id == bindparam("b_run"), NODES.c.index == bindparam("b_node"))
_NODE_STARTED = (
    update(NODES)
    .where(_THIS_NODE)
    .values(status=Status.RUNNING.value, attempts=bindparam("b_attempts"),
            started_at=func.coalesce(NODES.c.started_at, bindparam("b_started")))
)  # fmt: skip
_NODE_FINISHED = (
    update(NODES)
    .where(_THIS_NODE)
    .values(status=bindparam("b_status"), exit_code=bindparam("b_exit"), ended_at=bindparam("b_ended"))
)
_ATTEMPT_FINISHED = (
    update(ATTEMPTS)
    .where(_attempt_key(ATTEMPTS))
    .values(status=bindparam("b_status"), exit_code=bindparam("b_exit"), ended_at=bindparam("b_ended"),
            output_order=bindparam("b_order"))
)  # fmt: skip
_ARTIFACT_SIZE = (
    update(ARTIFACTS).where(_attempt_key(ARTIFACTS), ARTIFACTS.c.name == bindparam("b_name"))
    .values(size=bindparam("b_size"))
)  # fmt: skip
_RUN_FINISHED = (
    update(RUNS)
    .where(RUNS.c.id == bindparam("b_run"))
    .values(status=bindparam("b_status"), exit_code=bindparam("b_exit"), ended_at=bindparam("b_ended"))
)
