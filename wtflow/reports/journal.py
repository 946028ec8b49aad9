"""The journal listener: each run's events appended to `<run folder>/journal.jsonl` as they happen.

Written from this listener's own thread and flushed whenever the thread has caught up, so a
SIGKILLed wtflow leaves a journal as far as its run got (the encoding is wtflow.journal's).
"""

from __future__ import annotations

import getpass
import json
import os
import socket
from typing import IO, Any

from wtflow.events import Event, RunStarted
from wtflow.journal import JOURNAL, event_record
from wtflow.reports.output import Worker


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # a container user with no passwd entry
        return str(os.getuid())


class Journal(Worker):
    """Listener appending every event but output chunks to the run folder's journal."""

    wants_output = False  # the bytes are in the artifact files

    def __init__(self) -> None:
        self._file: IO[str] | None = None
        super().__init__("Journal")

    def handle(self, event: Event) -> None:
        self.put(event)

    def process(self, item: Any) -> None:
        record = event_record(item)
        if isinstance(item, RunStarted):
            record["origin"] = {"host": socket.gethostname(), "user": _user(), "pid": os.getpid()}
            if self._file is not None:
                self._file.close()
            # Owner-only, as every file of a run: its events name commands and settings.
            fd = os.open(item.run_dir / JOURNAL, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)
            self._file = os.fdopen(fd, "a", encoding="utf-8")
        if self._file is None:
            return
        self._file.write(json.dumps(record, ensure_ascii=False) + "\n")
        if self.idle():
            self._file.flush()

    def finish(self) -> None:
        if self._file is not None:
            self._file.close()

    def close(self) -> list[str]:
        self.stop()
        return [] if self.error is None else [str(self.error)]
