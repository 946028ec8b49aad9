"""The recorder: an engine listener writing the run to the database from a thread of its own.

`handle` only enqueues, so the event loop never waits on SQL. The writer thread takes
whatever has queued up and writes it in one transaction (db/rows.py), so a busy fan-out costs a
few commits a second rather than one per event. If the database fails mid-run, the run goes on
(its output is on disk regardless); the writer keeps what it could not write, retries, and
says at the end what is missing.

`Recorder.start` leaves opening a local SQLite record to the writer thread too: connecting and
the schema take time the run's first nodes need not wait for. Nothing is lost meanwhile: the
events wait in the queue, and the run's journal has them all. Such a record is written through
the stdlib's sqlite3 (db/lite.py) unless it needs an upgrade or has dead runs to settle, so most
recorded runs never import SQLAlchemy, which alone takes longer than a short run.
"""

from __future__ import annotations

import contextlib
import queue
import sqlite3
import threading
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Protocol

from wtflow.config import mask_url
from wtflow.db import sqlite_file
from wtflow.errors import RecorderError
from wtflow.events import Event, RunStarted

if TYPE_CHECKING:
    from sqlalchemy import Engine

_STOP = object()
BATCH_WINDOW = 0.05  # seconds to let events gather before a transaction
RETRY_EVERY = 1.0
HEARTBEAT = 30.0  # seconds between signs of life of a running run (schema.STALE judges them)
CLOSE_TIMEOUT = 60.0


class Recorder:
    """Records every run, node, attempt and artifact (a Listener); `close()` says what could not
    be recorded (`error` holds the latest such problem meanwhile)."""

    wants_output = False  # the bytes are in the artifact files; NodeFinished says how they alternated

    def __init__(self, url: str, engine: Engine | None = None) -> None:
        """Record into `url` through `engine`; without one, the writer thread opens the database."""
        self._record: _Record | None = None if engine is None else _Alchemy(engine)
        self._full_url = url
        self._url = mask_url(url)
        self._queue: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._run_dir = ""
        self._run_id = ""
        self.error: RecorderError | None = None
        self._closing = threading.Event()
        self._thread = threading.Thread(target=self._write_loop, name="wtflow-recorder", daemon=True)
        self._thread.start()

    @classmethod
    def connect(cls, url: str) -> Recorder:
        """Reach the database and bring its schema up to date, or raise RecorderError before anything runs."""
        from wtflow.db import schema

        return cls(url, schema.connect(url))

    @classmethod
    def start(cls, url: str) -> Recorder:
        """Record into `url` without holding up the run's start: a local SQLite file is created
        (or found) here, and opened by the writer thread while the first nodes run. Any other
        database is reached first (`connect`), so one that cannot be stops the run before
        anything runs; so is a SQLite file that is not a database or has a newer schema (a quick
        look with the stdlib's sqlite3). One that fails later is said at the end, the run complete
        in its journal for `wtflow db rebuild`."""
        path = sqlite_file.local_file(url)
        if path is None:
            return cls.connect(url)
        sqlite_file.check_usable(url, path)
        sqlite_file.create_private(url, path)
        return cls(url)

    def handle(self, event: Event) -> None:
        if isinstance(event, RunStarted):
            self._run_dir, self._run_id = str(event.run_dir), event.run_id
        self._queue.put(event)

    def close(self) -> list[str]:
        """Write what is left; the problems returned say what could not be recorded."""
        self._closing.set()
        self._queue.put(_STOP)
        self._thread.join(CLOSE_TIMEOUT)
        if self._thread.is_alive():
            self.error = RecorderError(f"database {self._url} did not answer within {CLOSE_TIMEOUT:.0f}s")
        return [] if self.error is None else [str(self.error)]

    # -- the writer thread ---------------------------------------------------------------

    def _open(self) -> _Record:
        path = sqlite_file.local_file(self._full_url)
        if path is not None:
            from wtflow.db import lite

            self._record = lite.open_record(self._full_url, path)
        if self._record is None:  # not a local file, or one that needs SQLAlchemy first
            from wtflow.db import schema

            self._record = _Alchemy(schema.connect(self._full_url))
        return self._record

    def _write_loop(self) -> None:
        try:
            self._write_all()
        finally:
            if self._record is not None:
                self._record.close()

    def _write_all(self) -> None:
        if self._record is None:
            with contextlib.suppress(Exception):  # tried again, and said, once there is something to write
                self._open()
        pending: list[Event] = []
        retry_at = beat_at = 0.0
        while True:
            try:
                item: object = self._queue.get(timeout=HEARTBEAT)
            except queue.Empty:
                item = None  # a quiet spell (one long node): only the heartbeat is due
            if item is not None and item is not _STOP:
                self._closing.wait(BATCH_WINDOW)  # let a batch gather, but never hold up the end of a run
            items = [] if item is None else [item]
            while not self._queue.empty():
                items.append(self._queue.get())
            stop = _STOP in items
            pending.extend(e for e in items if e is not _STOP)  # type: ignore[misc]
            now = time.monotonic()
            beat = self._run_id if self._run_id and not stop and now - beat_at >= HEARTBEAT else None
            if (pending or beat) and (stop or now >= retry_at):
                try:
                    (self._record or self._open()).write(pending, beat)
                except RecorderError as e:  # opening it: the URL is fine, the file is not (or not yet)
                    retry_at = now + RETRY_EVERY
                    self.error = RecorderError(
                        f"{e}; {len(pending)} events are not recorded: the run is complete in its journal "
                        f"in {self._run_dir}, which `wtflow db rebuild` records once the database is fixed"
                    )
                except Exception as e:  # SQLAlchemyError mostly; anything else must not end the thread
                    retry_at = now + RETRY_EVERY
                    self.error = RecorderError(
                        f"database {self._url} stopped taking records ({_reason(e)}); "
                        f"{len(pending)} events are not recorded; the output is complete in {self._run_dir}"
                    )
                else:
                    pending.clear()
                    self.error = None
                    beat_at = now if beat else beat_at
                    self._settle_dead_runs()
            if stop:
                return

    def _settle_dead_runs(self) -> None:
        """Mark crashed the runs of a dead wtflow that the record holds, from their journals:
        through SQLAlchemy, after this run's own rows are in, so that a kill meanwhile loses
        nothing (the next run settles this one too)."""
        record = self._record
        if record is None or not record.dead_runs:
            return
        record.dead_runs = False
        from wtflow.db import schema

        try:
            schema.connect(self._full_url).dispose()
        except Exception as e:  # theirs to settle another time; this run's record goes on
            self.error = RecorderError(
                f"database {self._url}: earlier crashed runs not settled ({_reason(e)})"
            )


class _Record(Protocol):
    """An open database the writer thread writes batches to: db/lite.py's Record, or `_Alchemy`."""

    dead_runs: bool  # crashed runs of others to settle once this run's first batch is in

    def write(self, events: Iterable[Event], beat: str | None = None) -> None: ...

    def close(self) -> None: ...


class _Alchemy:
    """A database written through SQLAlchemy: PostgreSQL, and SQLite files that needed it."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self.dead_runs = False  # schema.connect settled them

    def write(self, events: Iterable[Event], beat: str | None = None) -> None:
        from wtflow.db import rows

        with self._engine.begin() as conn:
            rows.write(conn, events)
            if beat:
                rows.beat(conn, beat)

    def close(self) -> None:
        self._engine.dispose()


def _reason(error: Exception) -> str:
    if isinstance(error, sqlite3.Error):
        from wtflow.db import lite

        return lite.reason(error)
    from wtflow.db import schema

    return schema.reason(error)
