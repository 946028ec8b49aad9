"""Reading the record for the views: each need is one method returning the `show --json` shapes.

This module is the only place the report and the UI touch the database, and it never
writes to it. It reuses the history commands' queries and JSON shapes, so a report, a UI
page and `wtflow show --json` always agree.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, Engine, select

from wtflow import history
from wtflow.config import Config
from wtflow.db import queries
from wtflow.db.tables import nodes as nodes_table
from wtflow.errors import LookupFailed

RunDict = dict[str, Any]


class RecordReader:
    """One database, read-only; the connection pool is opened on first use and kept (the UI
    asks many times a second), and a SQLite file that does not exist yet is not created."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._engine: Engine | None = None
        self._opening = threading.Lock()  # the UI reads from a pool of threads

    @classmethod
    def from_config(cls, config: Config) -> RecordReader:
        return cls(history.database_url(config))

    def exists(self) -> bool:
        return self._engine is not None or history._missing_sqlite_file(self.url) is None

    @contextmanager
    def _connection(self) -> Iterator[Connection]:
        with self._opening:
            if self._engine is None:
                missing = history._missing_sqlite_file(self.url)
                if missing is not None:
                    raise LookupFailed(f"no runs recorded yet: database {str(missing)!r} does not exist")
                from wtflow.db import schema

                self._engine = schema.connect(self.url, writer=False)
            engine = self._engine
        with engine.connect() as conn:
            yield conn

    def close(self) -> None:
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None

    def runs(
        self, *, workflow: str | None = None, status: str | None = None, limit: int = 50
    ) -> list[RunDict]:
        """Newest first, each with its node counts by status (`wtflow runs --json`)."""
        if not self.exists():
            return []
        with self._connection() as conn:
            views = queries.recent_runs(conn, workflow=workflow, status=status, limit=limit)
            return [history._run_json(v.run, v.counts) for v in views]

    def run(self, ref: str) -> RunDict:
        """One run and its nodes in tree order (`wtflow show --json`), each saying whether its
        children run at once (`parallel`, for the critical path)."""
        with self._connection() as conn:
            run = queries.find_run(conn, ref)
            tree = queries.run_tree(conn, run.id)
        nodes = []
        for view in tree:
            node = history._node_json(view)
            node["parallel"] = bool(view.row.parallel)
            nodes.append(node)
        return {**history._run_json(run, None), "nodes": nodes}

    def node(self, run_id: str, path: str) -> dict[str, Any] | None:
        """One node of a run as in `run()`, read without the rest of the tree (the live tail
        asks for it several times a second); None when the run has no such node."""
        with self._connection() as conn:
            index = conn.execute(
                select(nodes_table.c.index).where(nodes_table.c.run_id == run_id, nodes_table.c.path == path)
            ).scalar()
            if index is None:
                return None
            status = queries.node_status(conn, run_id, index)
            latest = queries.attempt_of(conn, run_id, index, None)
            attempts = [
                a
                for n in range(1, (latest.row.n if latest else 0) + 1)
                if (a := queries.attempt_of(conn, run_id, index, n)) is not None
            ]
        return {
            "path": path,
            "status": status,
            "attempts": [
                {"n": a.row.n, "status": a.row.status, "exit_code": a.row.exit_code,
                 "outputs": {name: {"path": o.path, "size": o.size} for name, o in a.outputs.items()}}
                for a in attempts
            ],
        }  # fmt: skip


def load_run(config: Config, ref: str) -> RunDict:
    """The run `ref` (an id, a unique prefix, or `last`) of the configured record."""
    reader = RecordReader.from_config(config)
    try:
        return reader.run(ref)
    finally:
        reader.close()
