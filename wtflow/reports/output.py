"""Reading a finished attempt's output back from its artifact files, for the reporters.

Reporters never hold a node's bytes in memory while it runs: the files on disk are the buffer,
read at the node's end in slices of `CHUNK`.
"""

from __future__ import annotations

import contextlib
import os
import queue
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from wtflow.errors import ConfigError

CHUNK = 64 * 1024


def check_writable(path: Path, *, what: str, fix: str) -> None:
    """A report written when the run ends: a path it cannot be written to is said when the run
    starts (ConfigError), not found out at the end."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        problem = None if os.access(path.parent, os.W_OK) else "the folder is not writable"
    except FileExistsError as e:  # a file where a folder of the path should be
        problem = f"{e.filename} is a file, not a folder"
    except OSError as e:
        problem = e.strerror
    if problem or path.is_dir():
        raise ConfigError(
            f"{what} {str(path)!r}: {problem or 'is a folder'}; pass a writable file path to {fix}"
        )


# Files this process has started writing: the first report of a process replaces a file left
# by an earlier `wtflow run`, the later workflows of the same `wtflow run` add to it.
_claimed: set[Path] = set()
_claimed_lock = threading.Lock()


def start_afresh() -> None:
    """A new invocation begins (`wtflow run`, or `main()` called again in one process): the report
    files it writes start afresh instead of adding to an earlier invocation's."""
    with _claimed_lock:
        _claimed.clear()


def first_in_process(path: Path) -> bool:
    """True the first time this process asks about `path` (then the caller starts it afresh)."""
    key = path.absolute()
    with _claimed_lock:
        if key in _claimed:
            return False
        _claimed.add(key)
        return True


def tail(path: Path | None, limit: int) -> tuple[bytes, int]:
    """The last `limit` bytes of the file and its whole size; (b"", 0) when there is none."""
    if path is None:
        return b"", 0
    try:
        with path.open("rb") as f:
            size = os.fstat(f.fileno()).st_size
            f.seek(max(0, size - limit))
            return f.read(limit), size
    except OSError:
        return b"", 0


def last_line(path: Path | None) -> str:
    """The last non-blank line of the file, decoded; '' when there is none."""
    data, _ = tail(path, 4096)
    for line in reversed(data.decode(errors="replace").splitlines()):
        if line.strip():
            return line.strip()
    return ""


def _slices(path: Path | None) -> Iterator[bytes]:
    if path is None:
        return
    try:
        f = path.open("rb")
    except OSError:
        return
    with f:
        # Lines (capped at CHUNK) so a secret is never cut in two before it is masked.
        while line := f.readline(CHUNK):
            yield line


def interleaved(
    stdout: Path | None, stderr: Path | None, order: tuple[tuple[str, int], ...] | None
) -> Iterator[bytes]:
    """Both files' bytes in the order the node wrote them (by NodeFinished.output_order), or
    stdout then stderr when the order was not kept."""
    if not order:
        yield from _slices(stdout)
        yield from _slices(stderr)
        return
    files: dict[str, Any] = {}
    try:
        for name, path in (("stdout", stdout), ("stderr", stderr)):
            if path is not None:
                with contextlib.suppress(OSError):  # shown as empty
                    files[name] = path.open("rb")
        for name, size in order:
            f = files.get(name)
            while f is not None and size > 0:
                data = f.readline(min(size, CHUNK))
                if not data:
                    break
                size -= len(data)
                yield data
        for f in files.values():  # what was written after the order was taken (a cancelled node)
            while data := f.readline(CHUNK):
                yield data
    finally:
        for f in files.values():
            f.close()


class Masker:
    """Replaces each secret value with *** in text and bytes."""

    def __init__(self, secrets: Iterable[str]) -> None:
        # Longest first, so a secret that contains another is masked whole.
        self.secrets = sorted({s for s in secrets if s}, key=len, reverse=True)
        self._encoded = [s.encode() for s in self.secrets]

    def text(self, value: str) -> str:
        for secret in self.secrets:
            value = value.replace(secret, "***")
        return value

    def data(self, value: bytes) -> bytes:
        for secret in self._encoded:
            value = value.replace(secret, b"***")
        return value


class Worker:
    """One thread doing a listener's slow work (files, the terminal) in the order events came,
    so `handle` only enqueues and the event loop never waits on a disk or a pipe."""

    def __init__(self, name: str) -> None:
        self.error: Exception | None = None
        self._name = name
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._drain, name=name, daemon=True)
        self._thread.start()

    def put(self, item: Any) -> None:
        self._queue.put(item)

    def idle(self) -> bool:
        """Nothing more is waiting (the time to flush)."""
        return self._queue.empty()

    def process(self, item: Any) -> None:
        raise NotImplementedError

    def finish(self) -> None:
        """Runs on the worker thread after the last item."""

    def _drain(self) -> None:
        while (item := self._queue.get()) is not _STOP:
            if self.error is None:
                try:
                    self.process(item)
                except Exception as e:  # the engine reports it after close()
                    self.error = RuntimeError(f"{self._name} stopped: {e}")
        try:
            self.finish()
        except Exception as e:
            self.error = self.error or RuntimeError(f"{self._name} stopped: {e}")

    def stop(self) -> None:
        self._queue.put(_STOP)
        self._thread.join()


_STOP = object()
