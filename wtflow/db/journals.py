"""The record from the runs' journals (wtflow.journal): settling a dead run, rebuilding a lost record.

A writer that finds a run whose wtflow process is gone replays that run's journal over its rows,
so nodes that ended before the SIGKILL get their real status even when the recorder had not
committed them; what was still running becomes `crashed`. `wtflow db rebuild` replays every
journal under the artifacts folder whose run the record does not hold.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, delete, select, update

from wtflow.db.rows import write
from wtflow.db.tables import artifacts, attempts, nodes, runs
from wtflow.events import RunFinished, RunStarted
from wtflow.journal import JOURNAL, read_journal
from wtflow.status import Status


def _forget(conn: Connection, run_id: str) -> None:
    for table in (artifacts, attempts, nodes):
        conn.execute(delete(table).where(table.c.run_id == run_id))
    conn.execute(delete(runs).where(runs.c.id == run_id))


def _mark_crashed(conn: Connection, run_id: str) -> None:
    conn.execute(update(runs).where(runs.c.id == run_id).values(status=Status.CRASHED.value))
    for table in (nodes, attempts):
        conn.execute(
            update(table)
            .where(table.c.run_id == run_id, table.c.status == Status.RUNNING.value)
            .values(status=Status.CRASHED.value)
        )


def settle(conn: Connection, run_id: str, run_dir: str, origin: dict[str, Any]) -> None:
    """A dead run: its rows replayed from its journal when it has one, then what had not ended
    marked crashed (a run whose journal says it finished keeps the status it finished with)."""
    journal = Path(run_dir) / JOURNAL
    try:
        events, _ = read_journal(journal)
    except OSError:
        events = []
    if events and isinstance(events[0], RunStarted) and events[0].run_id == run_id:
        _forget(conn, run_id)
        write(conn, events, origin)
        if isinstance(events[-1], RunFinished):
            return
    _mark_crashed(conn, run_id)


@dataclass(frozen=True, slots=True)
class Rebuilt:
    added: list[str]  # run ids replayed from their journals
    kept: int  # journals whose run the record holds already
    unreadable: list[Path]  # journals with no RunStarted to begin them


def journals_under(folder: Path) -> Iterator[Path]:
    """Each run folder's journal below `folder` (`<workflow>/<run folder>/journal.jsonl`); the
    `latest` link to a run folder is not a run of its own."""
    for path in sorted(folder.glob(f"*/*/{JOURNAL}")):
        if not path.parent.is_symlink():
            yield path


def rebuild(conn: Connection, artifacts_dir: Path, *, is_dead: Any) -> Rebuilt:
    """Replay every journal under `artifacts_dir` whose run is not in the record. A run whose
    journal has no end and whose process is gone (`is_dead(host, pid)`) is recorded crashed."""
    known = set(conn.execute(select(runs.c.id)).scalars())
    added: list[str] = []
    unreadable: list[Path] = []
    kept = 0
    for path in journals_under(artifacts_dir):
        try:
            events, origin = read_journal(path)
        except OSError:
            events, origin = [], {}
        if not events or not isinstance(events[0], RunStarted):
            unreadable.append(path)
            continue
        run_id = events[0].run_id
        if run_id in known:
            kept += 1
            continue
        write(conn, events, origin)
        if not isinstance(events[-1], RunFinished) and is_dead(origin.get("host", ""), origin.get("pid", 0)):
            _mark_crashed(conn, run_id)
        known.add(run_id)
        added.append(run_id)
    return Rebuilt(added, kept, unreadable)
