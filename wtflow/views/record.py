"""Reading the record for the views: each need is one method returning the `show --json` shapes.

This module is the only place the report and the UI touch the database, and it reads through
the read side (`wtflow.db.read`, opened read-only) and its JSON shapes (`wtflow.db.shapes`), so
a report, a UI page and `wtflow show --json` always agree.
"""

from __future__ import annotations

import contextlib
import threading
from typing import Any

from wtflow.config import Config
from wtflow.db.read import NothingRecorded, Reader, open_record, record_url
from wtflow.db.shapes import node_shape, runs_shape, show_shape

RunDict = dict[str, Any]


class RecordReader:
    """One database, read-only; opened on first use and kept (the UI asks many times a second).
    A SQLite file that does not exist yet is not created: there are no runs, until there are."""

    def __init__(self, url: str, *, missing_folder_is_empty: bool = False) -> None:
        self.url = url
        self._missing_folder_is_empty = missing_folder_is_empty
        self._stack = contextlib.ExitStack()
        self._reader: Reader | None = None
        self._opening = threading.Lock()  # the UI reads from a pool of threads

    @classmethod
    def from_config(cls, config: Config) -> RecordReader:
        return cls(record_url(config), missing_folder_is_empty=config.db.url is None)

    def _open(self) -> Reader:
        with self._opening:
            if self._reader is None:
                self._reader = self._stack.enter_context(
                    open_record(self.url, missing_folder_is_empty=self._missing_folder_is_empty)
                )
            elif self._reader.empty:  # kept open for long: a first run may have made the tables since
                self._reader.check_schema()
            return self._reader

    def exists(self) -> bool:
        try:
            self._open()
        except NothingRecorded:
            return False
        return True

    def close(self) -> None:
        with self._opening:
            self._stack.close()
            self._reader = None

    def runs(
        self, *, workflow: str | None = None, status: str | None = None, limit: int = 50
    ) -> list[RunDict]:
        """Newest first, each with its node counts by status (`wtflow runs --json`)."""
        if not self.exists():
            return []
        return runs_shape(self._open().recent_runs(workflow=workflow, status=status, limit=limit))

    def run(self, ref: str) -> RunDict:
        """One run and its nodes in tree order (`wtflow show --json`), each saying whether its
        children run at once (`parallel`, for the critical path)."""
        reader = self._open()
        run = reader.find_run(ref)
        tree = reader.run_tree(run)
        shape = show_shape(run, tree)
        for node, info in zip(shape["nodes"], tree, strict=True):
            node["parallel"] = info.parallel
        return shape

    def node(self, run_id: str, path: str) -> dict[str, Any] | None:
        """One node of a run as in `run()`, read without the rest of the tree (the live tail
        asks for it several times a second); None when the run has no such node."""
        reader = self._open()
        info = reader.node_at(reader.run(run_id), path)
        return None if info is None else node_shape(info)


def load_run(config: Config, ref: str) -> RunDict:
    """The run `ref` (an id, a unique prefix, or `last`) of the configured record."""
    reader = RecordReader.from_config(config)
    try:
        return reader.run(ref)
    finally:
        reader.close()
