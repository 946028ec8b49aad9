"""`--events FILE`: every engine event as one JSON line, written and flushed as it happens, for
`tail -f` or to ship elsewhere.

    {"event": "NodeStarted", "run_id": "…", "index": 1, "path": ["ci", "lint"], "attempt": 1,
     "started_at": "2026-12-01T09:30:00.123456+00:00", "stdout_path": "…", "pid": 4242, …}

Each line holds the event's fields by name, plus `"event"`: its type. Times are ISO 8601 in
UTC, paths are strings, tuples are lists, statuses are their words. Output chunks
(OutputReceived) carry bytes: `"data"` is the text when the chunk is valid UTF-8 and
`"encoding": "utf-8"`; otherwise `"data"` is base64 and `"encoding": "base64"` (a chunk may end
inside a character, so a reader joining text should join bytes). `Secret` values are masked in
output chunks, one chunk at a time.

The lines are written by this listener's own thread (a slow disk never holds up the event
loop) and flushed after each batch the thread takes, so a reader sees each event within a
moment of it happening. The first workflow of a process starts the file afresh; the next ones of
the same `wtflow run` append to it.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import IO, Any

from wtflow.errors import ConfigError
from wtflow.events import Event
from wtflow.journal import event_line
from wtflow.reports.output import Masker, Worker, first_in_process


class EventsLog(Worker):
    """Listener writing JSON lines to a file."""

    wants_output = True

    def __init__(self, path: Path, secrets: Iterable[str] = ()) -> None:
        self.path = path
        self._mask = Masker(secrets)
        mode = "w" if first_in_process(path) else "a"
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._file: IO[str] = path.open(mode, encoding="utf-8")
        except OSError as e:
            raise ConfigError(
                f"events file {str(path)!r}: {e.strerror}; pass a writable path to --events (or WTFLOW_EVENTS)"
            ) from None
        super().__init__("EventsLog")

    def handle(self, event: Event) -> None:
        self.put(event)

    def process(self, item: Any) -> None:
        self._file.write(event_line(item, self._mask))
        if self.idle():
            self._file.flush()

    def finish(self) -> None:
        self._file.close()

    def close(self) -> list[str]:
        self.stop()
        return [] if self.error is None else [str(self.error)]
