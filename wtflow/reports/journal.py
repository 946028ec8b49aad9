"""The journal listener: each run's events appended to `<run folder>/journal.jsonl` as they happen.

Written and flushed as each event comes, on the event loop, as the artifacts are: a line lands
in the page cache in microseconds, while handing each event to a thread of its own (as this
listener once did) woke that thread twice a node and made a 500-node fan-out ~8 % slower. So a
SIGKILLed wtflow leaves a journal with every event up to its death (the encoding is
wtflow.journal's).
"""

from __future__ import annotations

import getpass
import os
import socket
from typing import IO

from wtflow.events import Event, RunStarted
from wtflow.journal import JOURNAL, event_line, event_record, record_line


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # a container user with no passwd entry
        return str(os.getuid())


class Journal:
    """Listener appending every event but output chunks to the run folder's journal; a write
    that fails (a full disk) stops it, and `close` says so."""

    wants_output = False  # the bytes are in the artifact files

    def __init__(self) -> None:
        self._file: IO[str] | None = None
        self.error: Exception | None = None

    def handle(self, event: Event) -> None:
        if self.error is not None:
            return
        try:
            self._append(event)
        except Exception as e:  # the engine reports it after close()
            self.error = RuntimeError(f"Journal stopped: {e}")

    def _append(self, event: Event) -> None:
        if isinstance(event, RunStarted):
            record = event_record(event)
            record["origin"] = {"host": socket.gethostname(), "user": _user(), "pid": os.getpid()}
            self._close_file()
            # Owner-only, as every file of a run: its events name commands and settings.
            fd = os.open(
                event.run_dir / JOURNAL, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600
            )
            self._file = os.fdopen(fd, "a", encoding="utf-8")
            line = record_line(record)
        elif self._file is None:
            return
        else:
            line = event_line(event)
        self._file.write(line)
        self._file.flush()

    def _close_file(self) -> None:
        file, self._file = self._file, None
        if file is not None:
            file.close()

    def close(self) -> list[str]:
        try:
            self._close_file()
        except OSError as e:
            self.error = self.error or RuntimeError(f"Journal stopped: {e}")
        return [] if self.error is None else [str(self.error)]
