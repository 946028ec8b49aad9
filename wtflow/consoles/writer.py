"""Console output off the event loop: one writer thread per console, taking bytes in order.

    Writer.write(fd, data)          bytes kept in memory until written
    Writer.write_parts(fd, parts)   the same, in pieces written back to back (one writev)
    Writer.write_slice(fd, slice)   bytes already in a node's artifact file, read back when written
    Writer.close()                  returns once the reader has taken everything (or went away)

Why a thread. A console's stdout may be a pipe nobody reads (`wtflow run | less`, paused) or a
terminal stopped by Ctrl-S. A write there blocks; on the event loop it would stop the time
limits, the other nodes and Ctrl-C. Non-blocking writes on the loop were the other way, but
O_NONBLOCK is a flag of the open file description, which the terminal or pipe shares with the
shell and every other writer: it would leak to them, and Python's own `print()` to the same
stream would then fail with BlockingIOError. So the thread makes plain blocking `os.write` calls.

Fork safety. PyFunc nodes fork this process, possibly while the thread is in the middle of a
write. The thread holds no lock while it writes: it writes the file descriptor with `os.write`,
never through `sys.stdout` (whose buffer lock a child's `print()` would then wait on forever),
and it takes the writer's own lock only to pick up the next item. A forked child never touches
a Writer, and it rebinds `sys.stdout`/`sys.stderr` to files of its own (executors/_child.py).

Memory. At most MEMORY_LIMIT bytes wait in memory. Past that a console hands over where the
bytes are in the node's artifact file instead (the engine writes a chunk there before it sends
the event), and the thread reads them back when it comes to them. Contiguous output of one
stream makes one slice, so a stalled reader costs about a hundred bytes per switch between
nodes or streams, however much they print.

Closing. `close()` waits until everything is written, as any program writing to a pipe does: a
reader paused in `less` gets every byte once it reads on. The engine closes listeners in a
worker thread, so its event loop (and Ctrl-C) stays free meanwhile; on the main thread the wait
is interruptible by Ctrl-C. A reader that went away (EPIPE) ends the writing, and `error` says so.
"""

from __future__ import annotations

import contextlib
import errno
import os
import select
import threading
from collections import deque
from dataclasses import dataclass, replace
from pathlib import Path
from typing import IO

from wtflow.consoles.lines import Lines

MEMORY_LIMIT = 8 << 20
_PIECE = 1 << 20  # how much of a slice is read back at a time
_BATCH = 1 << 20  # queued chunks for one descriptor go out in writes of about this size
_IOV_MAX = 1024  # the most buffers one writev takes (Linux)


@dataclass(frozen=True, slots=True)
class FileSlice:
    """Bytes of an artifact file; with a prefix, written as the plain console writes lines."""

    path: Path
    offset: int
    length: int
    prefix: bytes | None = None
    ends_line: bool = True  # whether its last byte is a newline (only such slices are extended)


def prefix_lines(prefix: bytes, data: bytes) -> list[bytes | memoryview]:
    """Every line of `data` with `prefix` before it, the last one ended by a newline: as parts
    for one writev, so that a megabyte of output is copied once (to put the prefixes in), not
    four times over (split, join, and two concatenations)."""
    body = data.replace(b"\n", b"\n" + prefix)  # `data` itself when it has no newline
    if data.endswith(b"\n"):  # the prefix that replace put after the last newline is not wanted
        return [prefix, memoryview(body)[: len(body) - len(prefix)]]
    return [prefix, body, b"\n"]


def descriptor(stream: IO[str]) -> int | None:
    """The file descriptor under a text stream; None for one in memory (StringIO, pytest's capsys)."""
    try:
        return stream.fileno()
    except (AttributeError, OSError, ValueError):  # io.UnsupportedOperation is both
        return None


def write_bytes(stream: IO[str], data: bytes) -> None:
    """Write bytes to a text stream at once (its buffer when it has one), flushing both.

    Blocking: for output before or after a run (`--dry-run`) and for streams in memory."""
    stream.flush()
    buffer: IO[bytes] | None = getattr(stream, "buffer", None)
    if buffer is None:
        stream.write(data.decode(errors="replace"))
    else:
        buffer.write(data)
        buffer.flush()
    stream.flush()


_Item = tuple[int, "bytes | memoryview | FileSlice"]


class Target:
    """One text stream of a console: written by the console's Writer when it has a descriptor,
    else (a stream in memory, which cannot block) at once."""

    def __init__(self, stream: IO[str], writer: Writer) -> None:
        self.stream = stream
        self.fd = descriptor(stream)
        self.encoding = getattr(stream, "encoding", None) or "utf-8"
        self._writer = writer
        if self.fd is not None:
            # What the program printed itself before the run goes first.
            with contextlib.suppress(OSError, ValueError):
                stream.flush()

    def write(self, data: bytes) -> None:
        if self.fd is None:
            write_bytes(self.stream, data)
        else:
            self._writer.write(self.fd, data)

    def write_parts(self, parts: list[bytes | memoryview]) -> None:
        if self.fd is None:
            write_bytes(self.stream, b"".join(parts))
        else:
            self._writer.write_parts(self.fd, parts)

    def write_text(self, text: str) -> None:
        self.write(text.encode(self.encoding, errors="replace"))

    def write_lines(self, lines: Lines, prefix: bytes | None = None) -> None:
        """A node's lines, each after `prefix` if given; by their place in the artifact file when
        the reader has fallen behind."""
        if self.fd is not None and lines.file is not None and self._writer.over_budget:
            ends_line = lines.data.endswith(b"\n")
            piece = FileSlice(lines.file, lines.offset, len(lines.data), prefix, ends_line)
            self._writer.write_slice(self.fd, piece)
        elif prefix is None:
            self.write(lines.data)
        else:
            self.write_parts(prefix_lines(prefix, lines.data))


class Writer:
    """Writes to file descriptors from a thread of its own, in the order it was given the bytes."""

    def __init__(self, owner: str) -> None:
        self._owner = owner
        self._items: deque[_Item] = deque()
        self._cond = threading.Condition(threading.Lock())
        self._in_memory = 0
        self._busy = False
        self._closed = False
        self._thread: threading.Thread | None = None
        self.error: str | None = None

    @property
    def over_budget(self) -> bool:
        """True when more bytes wait in memory than MEMORY_LIMIT: hand over slices instead."""
        return self._in_memory > MEMORY_LIMIT

    @property
    def idle(self) -> bool:
        """Nothing waiting and nothing being written."""
        with self._cond:
            return not self._items and not self._busy

    def write(self, fd: int, data: bytes) -> None:
        if data:
            self.write_parts(fd, [data])

    def write_parts(self, fd: int, parts: list[bytes | memoryview]) -> None:
        """Bytes in pieces, written one after the other (in one writev when they fit)."""
        with self._cond:
            if self._closed or self.error is not None:
                return
            for part in parts:
                if part:
                    self._items.append((fd, part))
                    self._in_memory += len(part)
            self._wake()

    def write_slice(self, fd: int, piece: FileSlice) -> None:
        if not piece.length:
            return
        with self._cond:
            if self._closed or self.error is not None:
                return
            last = self._items[-1] if self._items else None
            if last is not None and last[0] == fd and _follows(last[1], piece):
                assert isinstance(last[1], FileSlice)
                grown = replace(last[1], length=last[1].length + piece.length, ends_line=piece.ends_line)
                self._items[-1] = (fd, grown)
            else:
                self._items.append((fd, piece))
            self._wake()

    def close(self) -> None:
        """Wait until every byte is written or the reader went away; safe to call again."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
            thread = self._thread
        if thread is not None:
            thread.join()  # interruptible by Ctrl-C on the main thread

    # -- the thread ----------------------------------------------------------------------

    def _wake(self) -> None:
        if self._thread is None:
            # Started at the first write: a quiet run never has the thread.
            self._thread = threading.Thread(target=self._run, name=f"wtflow-{self._owner}", daemon=True)
            self._thread.start()
        self._cond.notify()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._items and not self._closed:
                    self._cond.wait()
                if not self._items:
                    return
                fd, item = self._items.popleft()
                parts = [] if isinstance(item, FileSlice) else self._batch(fd, item)
                self._busy = True
            try:
                if parts:
                    _write_all(fd, parts)
                elif isinstance(item, FileSlice):
                    _write_slice(fd, item)
            except OSError as e:
                with self._cond:
                    self.error = f"{self._owner} stopped: {e}"
                    self._items.clear()
                    self._in_memory, self._busy = 0, False
                    self._cond.notify_all()
                return
            with self._cond:
                self._in_memory -= sum(len(part) for part in parts)
                self._busy = False

    def _batch(self, fd: int, first: bytes | memoryview) -> list[bytes | memoryview]:
        # Chunks queued meanwhile for the same descriptor go in one writev: one system call, no copy.
        parts, size = [first], len(first)
        items = self._items
        while items and size < _BATCH and len(parts) < _IOV_MAX and items[0][0] == fd:
            data = items[0][1]
            if isinstance(data, FileSlice):
                break
            items.popleft()
            parts.append(data)
            size += len(data)
        return parts


def _follows(last: bytes | memoryview | FileSlice, piece: FileSlice) -> bool:
    return (
        isinstance(last, FileSlice)
        and last.path == piece.path
        and last.offset + last.length == piece.offset
        and last.prefix == piece.prefix
        and (last.prefix is None or last.ends_line)  # a cut line is ended before the next begins
    )


def _write_all(fd: int, parts: list[bytes | memoryview]) -> None:
    views = [memoryview(part) for part in parts]
    first = 0
    while first < len(views):
        try:
            written = os.writev(fd, views[first:]) if first + 1 < len(views) else os.write(fd, views[first])
        except BlockingIOError:  # someone else set O_NONBLOCK on the shared description
            select.select([], [fd], [])
            continue
        if not written:
            raise OSError(errno.EIO, "the output took no more bytes")
        while written:  # a short write: go on from where it stopped
            if written >= len(views[first]):
                written -= len(views[first])
                first += 1
            else:
                views[first] = views[first][written:]
                written = 0


def _write_slice(fd: int, piece: FileSlice) -> None:
    try:
        f = piece.path.open("rb")
    except OSError as e:
        _write_all(fd, [_lost(piece, piece.length, e.strerror)])
        return
    with contextlib.closing(f):
        f.seek(piece.offset)
        left, carry = piece.length, b""
        while left:
            try:
                data = f.read(min(_PIECE, left))
            except OSError as e:
                _write_all(fd, [_lost(piece, left, e.strerror)])
                return
            if not data:  # the file kept less than was printed (a full disk): the engine says so
                break
            left -= len(data)
            if piece.prefix is None:
                _write_all(fd, [data])
                continue
            data = carry + data
            cut = data.rfind(b"\n") + 1
            carry = data[cut:]
            if cut:
                _write_all(fd, prefix_lines(piece.prefix, data[:cut]))
        if carry and piece.prefix is not None:
            _write_all(fd, prefix_lines(piece.prefix, carry))


def _lost(piece: FileSlice, size: int, why: str | None) -> bytes:
    return f"[wtflow: {size} bytes not shown: cannot read {piece.path}: {why}]\n".encode()
