"""Whole lines out of nodes' chunks, and where those lines sit in the nodes' artifact files.

The line consoles write whole lines only (a node's partial last line waits until more comes or
the node ends), so lines of nodes running at once are never torn apart. Knowing where each
released piece lies in the artifact file lets a console hand the writer a FileSlice instead of
the bytes when its reader has fallen behind (see writer.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from wtflow.events import NodeStarted, OutputReceived

# A line longer than this is written in pieces rather than held without bound.
MAX_PENDING = 64 * 1024

_Key = tuple[int, str]


@dataclass(frozen=True, slots=True)
class Lines:
    """Complete lines of one stream of one node, and their place in its artifact file (if known)."""

    stream: str
    data: bytes
    file: Path | None
    offset: int


class LineJoiner:
    """Per (node, stream): hands out complete lines, keeps the partial tail."""

    def __init__(self) -> None:
        self._pending: dict[_Key, bytes] = {}
        self._files: dict[_Key, Path | None] = {}
        self._released: dict[_Key, int] = {}

    def started(self, event: NodeStarted) -> None:
        """A new attempt writes new files, from their start."""
        for stream, path in (("stdout", event.stdout_path), ("stderr", event.stderr_path)):
            key = (event.index, stream)
            self._files[key], self._released[key] = path, 0
            self._pending.pop(key, None)

    def feed(self, event: OutputReceived) -> Lines | None:
        key = (event.index, event.stream)
        buf = self._pending.pop(key, b"") + event.data
        cut = buf.rfind(b"\n") + 1
        if cut == 0 and len(buf) < MAX_PENDING:
            self._pending[key] = buf
            return None
        if cut == 0:
            return self._release(key, buf)
        if cut < len(buf):
            self._pending[key] = buf[cut:]
        return self._release(key, buf[:cut])

    def flush(self, index: int) -> list[Lines]:
        """The partial last lines of a node that ended."""
        out = []
        for stream in ("stdout", "stderr"):
            tail = self._pending.pop((index, stream), b"")
            if tail:
                out.append(self._release((index, stream), tail))
        return out

    def _release(self, key: _Key, data: bytes) -> Lines:
        offset = self._released.get(key, 0)
        self._released[key] = offset + len(data)
        return Lines(key[1], data, self._files.get(key), offset)
