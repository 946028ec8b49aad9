"""Terminal output, as listeners of engine events.

    RawConsole     the nodes' own bytes, stdout to stdout and stderr to stderr, nothing added
    PlainConsole   `[node/path] line` prefixes plus start and end lines: for CI logs and pipes

Both write whole lines only (a node's partial last line waits until it ends), so lines of nodes
running at once are never torn apart.
"""

from __future__ import annotations

import sys
from collections import Counter
from typing import IO

from wtflow.events import Event, NodeFinished, NodeStarted, OutputReceived, RunFinished, RunStarted
from wtflow.status import Status

# A line longer than this is written in pieces rather than held without bound.
_MAX_PENDING = 64 * 1024


def _binary(stream: IO[str]) -> IO[bytes] | None:
    return getattr(stream, "buffer", None)


def write_bytes(stream: IO[str], data: bytes) -> None:
    """Write bytes to a text stream (its buffer when it has one), flushing both."""
    stream.flush()
    buffer = _binary(stream)
    if buffer is None:
        stream.write(data.decode(errors="replace"))
    else:
        buffer.write(data)
        buffer.flush()
    stream.flush()


class _LineJoiner:
    """Per (node, stream): hands out complete lines, keeps the partial tail."""

    def __init__(self) -> None:
        self._pending: dict[tuple[int, str], bytes] = {}

    def feed(self, key: tuple[int, str], data: bytes) -> bytes:
        buf = self._pending.pop(key, b"") + data
        cut = buf.rfind(b"\n") + 1
        if cut == 0 and len(buf) < _MAX_PENDING:
            self._pending[key] = buf
            return b""
        if cut == 0:
            return buf
        if cut < len(buf):
            self._pending[key] = buf[cut:]
        return buf[:cut]

    def flush(self, index: int) -> list[tuple[str, bytes]]:
        out = []
        for stream in ("stdout", "stderr"):
            tail = self._pending.pop((index, stream), b"")
            if tail:
                out.append((stream, tail))
        return out


class RawConsole:
    """The nodes' bytes as they are: what the Python API shows by default."""

    def __init__(self, stdout: IO[str] | None = None, stderr: IO[str] | None = None) -> None:
        self._streams = {"stdout": stdout, "stderr": stderr}
        self._lines = _LineJoiner()

    def _stream(self, name: str) -> IO[str]:
        chosen = self._streams[name]
        if chosen is not None:
            return chosen
        return sys.stdout if name == "stdout" else sys.stderr

    def handle(self, event: Event) -> None:
        if isinstance(event, OutputReceived):
            lines = self._lines.feed((event.index, event.stream), event.data)
            if lines:
                write_bytes(self._stream(event.stream), lines)
        elif isinstance(event, NodeFinished):
            for stream, tail in self._lines.flush(event.index):
                write_bytes(self._stream(stream), tail)

    wants_output = True

    def close(self) -> list[str]:
        return []


class PlainConsole:
    """Prefixed lines, and a line when each node starts and ends: for CI logs and pipes."""

    def __init__(self, out: IO[str] | None = None, *, verbose: bool = False) -> None:
        self._out = out
        self._lines = _LineJoiner()
        self._outcome: dict[int, Status] = {}
        self.verbose = verbose

    @property
    def out(self) -> IO[str]:
        return self._out if self._out is not None else sys.stdout

    def _emit(self, path: tuple[str, ...], data: bytes, stream: str) -> None:
        prefix = f"[{'/'.join(path)}]{' !' if stream == 'stderr' else ''} ".encode()
        text = data if data.endswith(b"\n") else data + b"\n"
        body = b"".join(prefix + line + b"\n" for line in text[:-1].split(b"\n"))
        write_bytes(self.out, body)

    def handle(self, event: Event) -> None:
        if isinstance(event, OutputReceived):
            lines = self._lines.feed((event.index, event.stream), event.data)
            if lines:
                self._emit(event.path, lines, event.stream)
        elif isinstance(event, NodeStarted):
            attempt = f" (attempt {event.attempt})" if event.attempt > 1 else ""
            self.out.write(f"==> {'/'.join(event.path)} started{attempt}\n")
            self.out.flush()
        elif isinstance(event, NodeFinished):
            if event.index in self._outcome:
                self._outcome[event.index] = event.status
            for stream, tail in self._lines.flush(event.index):
                self._emit(event.path, tail, stream)
            if event.attempt == 0 and not self.verbose and event.status != Status.SKIPPED:
                return  # grouping nodes: their children already said it
            took = ""
            if event.started_at is not None:
                took = f" in {(event.ended_at - event.started_at).total_seconds():.2f}s"
            code = f" (exit {event.exit_code})" if event.exit_code not in (None, 0) else ""
            retry = ", will retry" if event.will_retry else ""
            self.out.write(f"<== {'/'.join(event.path)} {event.status}{code}{took}{retry}\n")
            self.out.flush()
        elif isinstance(event, RunStarted):
            # Counted like the summary and `wtflow runs`: nodes that execute something, not groups.
            self._outcome = {spec.index: Status.PENDING for spec in event.nodes if spec.kind is not None}
            self.out.write(f"=== run {event.run_id[:8]} of {event.workflow!r}: output in {event.run_dir}\n")
            self.out.flush()
        elif isinstance(event, RunFinished):
            tally = Counter(str(status) for status in self._outcome.values())
            counts = ", ".join(f"{n} {s}" for s, n in sorted(tally.items()))
            self.out.write(f"=== run {event.run_id[:8]} {event.status} ({counts})\n")
            self.out.flush()

    wants_output = True

    def close(self) -> list[str]:
        return []
