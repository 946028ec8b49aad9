"""Where node output goes: one folder per run, one per node, a file per stream.

    <artifacts_dir>/<workflow>/<YYYYmmddTHHMMSSZ>-<run id[:8]>/<root>/<child>/.../stdout
                                                                            .../stderr
                                                                            .../attempt-2/stdout   (retries)
    <artifacts_dir>/<workflow>/latest -> the newest run folder

Every chunk is written (unbuffered, straight to the file descriptor) as it arrives, so a crash
loses nothing that was already read from the process.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import re
from collections.abc import Callable, Iterable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aiofiles
import aiofiles.os

from wtflow.errors import UsageError
from wtflow.events import KeptFile

if TYPE_CHECKING:
    from wtflow.config import Config

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def slug(name: str) -> str:
    """A folder name for a workflow name: safe characters only, never '.' or '..'."""
    cleaned = _UNSAFE.sub("-", name).strip("-.") or "workflow"
    return cleaned[:100]


def run_folder_name(run_id: str, started_at: datetime) -> str:
    return f"{started_at.strftime('%Y%m%dT%H%M%SZ')}-{run_id[:8]}"


def node_dir(run_dir: Path, path: tuple[str, ...]) -> Path:
    """The folder of a node; no name may lead out of the run folder."""
    for name in path:
        # The model rejects these names already; this is the last line before a path is built.
        if not name or name in (".", "..") or "/" in name or "\0" in name:
            raise UsageError(f"node name {name!r} cannot name a folder inside {str(run_dir)!r}")
    return run_dir.joinpath(*path)


def attempt_dir(run_dir: Path, path: tuple[str, ...], attempt: int) -> Path:
    folder = node_dir(run_dir, path)
    return folder if attempt <= 1 else folder / f"attempt-{attempt}"


class StreamFile:
    """Appends one stream's chunks to its file; remembers the first write error instead of raising.

    A full disk must not stop the pipe from being drained (the process would block), and nodes
    that already finished keep their output; the engine reports the error at the end.

    Plain `os.write` on the event loop, not a thread per call: a chunk lands in the page cache in
    microseconds, while a hop to a worker thread and back cost more than the write itself (it
    made a 500-node fan-out 1.9x slower than `xargs -P`; see benchmarks/). The local executor's
    pumps call `write_now` from the loop's readiness callback (StreamSink.write_now)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.size = 0
        self.error: OSError | None = None
        self._fd: int | None = None
        self._opened = False

    def open_now(self, *, folder_made: bool = False) -> None:
        """Create the file (and its folder, unless made); a failure is kept in `error`, never raised.

        The engine creates both files of an attempt before its process starts (the process may
        write into their folder, $WTFLOW_ARTIFACTS); a file nobody created is created by its
        first write or its close."""
        self._opened = True
        try:
            if not folder_made:
                make_private_dirs(self.path.parent)
            self._fd = _private(str(self.path), os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC)
        except OSError as e:
            self.error = e

    def write_now(self, data: bytes) -> None:
        self.size += len(data)
        if not self._opened:
            self.open_now()
        if self._fd is None or self.error is not None:
            return
        view = memoryview(data)
        try:
            # A full disk or a file size limit first shows as a short write, and only the next
            # write fails: taking the short write as complete lost a node's last bytes silently.
            while view:
                written = os.write(self._fd, view)
                if not written:
                    raise OSError(errno.EIO, "the file took no more bytes")
                view = view[written:]
        except OSError as e:
            self.error = e

    async def close(self) -> None:
        if not self._opened:  # an empty stream still has its (empty) file
            self.open_now()
        self._close_fd()

    def _close_fd(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = None

    def discard(self) -> None:
        """Close the file and remove it, for a process that never started: nothing came."""
        self._close_fd()
        if self._opened and self.error is None and not self.size:
            with contextlib.suppress(OSError):
                os.unlink(self.path)


class ArtifactStore:
    """Creates run and node folders and the stream files in them."""

    def __init__(self, artifacts_dir: Path) -> None:
        self.artifacts_dir = artifacts_dir

    async def create_run_dir(self, workflow: str, run_id: str, started_at: datetime) -> Path:
        workflow_dir = self.artifacts_dir / slug(workflow)
        run_dir = workflow_dir / run_folder_name(run_id, started_at)
        try:
            await asyncio.to_thread(make_private_dirs, run_dir)
        except OSError as e:
            raise UsageError(
                f"artifacts folder {str(self.artifacts_dir)!r} is not usable: {e.strerror}; "
                "point WTFLOW_ARTIFACTS_DIR (or --artifacts-dir) at a writable folder"
            ) from None
        latest = workflow_dir / "latest"
        tmp = workflow_dir / f".latest-{run_id[:8]}"
        with contextlib.suppress(OSError):  # a convenience for people; never fails a run
            await aiofiles.os.symlink(run_dir.name, tmp)
            await aiofiles.os.replace(tmp, latest)
        return run_dir

    def attempt_output(self, run_dir: Path, path: tuple[str, ...], attempt: int) -> AttemptOutput:
        """The output files of an attempt, not yet created (see `AttemptOutput.create`)."""
        return AttemptOutput(attempt_dir(run_dir, path, attempt))


class AttemptOutput:
    """An attempt's stdout and stderr files, and how the two alternated."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.files = {name: StreamFile(folder / name) for name in ("stdout", "stderr")}
        self.order = OutputOrder()
        self.kept: tuple[KeptFile, ...] = ()  # its result and declared files (wtflow.kept)

    def create(self) -> None:
        """Create the folder and files before the process starts: it may write into the folder,
        and read its own output there from its first line (`$WTFLOW_ARTIFACTS/stdout`). Making
        the files as it started instead made a chain up to 18 % faster where creating a file is
        slow (see the README), but a process looking for its stdout file could find none; the
        next node of a sequence has them made earlier instead (`create_ahead`).

        On the loop, even while other nodes run: on 2 cores, handing this and the start of the
        process to worker threads made a 300-node fan-out 1.35x slower (six times the context
        switches, the GIL going back and forth), for a few system calls a node."""
        create_files(self.files.values())

    def create_ahead(self) -> bool:
        """Create the folder and files now for a process that may start later, while another one
        runs (the next in a sequence): what `create` does, off the path from one process's end to
        the next's start. Made only where the folder is new and its parent there, so that
        `discard` removes all it made; False when nothing was made."""
        try:
            os.mkdir(self.folder, 0o700)
        except OSError:
            return False
        for f in self.files.values():
            f.open_now(folder_made=True)
        return True

    def discard(self) -> None:
        """Remove what `create_ahead` made, for an attempt that never started (its node was
        skipped, the run stopped); a folder something else wrote into stays."""
        for f in self.files.values():
            f.discard()
        with contextlib.suppress(OSError):
            os.rmdir(self.folder)

    def sinks(self, on_chunk: Callable[[str, bytes], None] | None) -> dict[str, StreamSink]:
        """Where an executor sends each stream: the file first, then `on_chunk` (the listeners)."""
        return {name: StreamSink(self, name, on_chunk) for name in self.files}

    def sizes(self) -> tuple[int, int, tuple[tuple[str, int], ...] | None, tuple[KeptFile, ...]]:
        """What NodeFinished says of the output: each stream's size, their order, the files kept."""
        return self.files["stdout"].size, self.files["stderr"].size, self.order.frozen(), self.kept

    async def close(self, node: str) -> list[str]:
        """Close both files; the problems say what could not be kept (a full disk...)."""
        problems = []
        for f in self.files.values():
            await f.close()
            if f.error is not None and f.size:
                problems.append(f"output of {node} not fully kept in {f.path}: {f.error.strerror}")
            elif f.error is not None:
                problems.append(f"cannot write {f.path}: {f.error.strerror}")
        return problems


class StreamSink:
    """One stream of one attempt, as an executor's sink."""

    def __init__(
        self, output: AttemptOutput, stream: str, on_chunk: Callable[[str, bytes], None] | None
    ) -> None:
        self._file, self._order, self._stream, self._on_chunk = (
            output.files[stream],
            output.order,
            stream,
            on_chunk,
        )

    async def write(self, data: bytes) -> None:
        self.write_now(data)

    def write_now(self, data: bytes) -> None:
        """The same, never waiting: the local executor's pumps write from the loop's callbacks."""
        self._file.write_now(data)
        self._order.add(self._stream, len(data))
        if self._on_chunk is not None:
            self._on_chunk(self._stream, data)


def create_files(files: Iterable[StreamFile]) -> None:
    """Create the files (and their folder, once) now; a failure is kept on each file, never raised."""
    made: set[Path] = set()
    for f in files:
        if not f._opened:
            f.open_now(folder_made=f.path.parent in made)
            if f.error is None:
                made.add(f.path.parent)


def _private(path: str, flags: int) -> int:
    # Output may hold secrets a node printed: owner-only, whatever the umask.
    return os.open(path, flags, 0o600)


def make_private_dirs(path: Path) -> None:
    """Create `path` and its missing parents readable by their owner only; existing folders
    (say a shared artifacts folder the user chose) are left as they are."""
    # mkdir first: its parent is there for nearly every attempt's folder, and one system call
    # beats looking for each missing level first (lstat is ~80 us a call on some disks).
    try:
        os.mkdir(path, 0o700)
    except FileNotFoundError:
        if path.parent == path or path.parent.is_dir():  # no parent to make: mkdir refused (/proc)
            raise
        make_private_dirs(path.parent)
        make_private_dirs(path)
    except FileExistsError:  # a run started at the same moment made it; fine if a folder
        if not path.is_dir():
            raise


async def ensure_state_dir(state_dir: Path) -> None:
    """Create the state folder, or say in one line why it cannot be."""
    try:
        await asyncio.to_thread(ensure_private_dir, state_dir)
    except OSError as e:
        raise UsageError(
            f"state folder {str(state_dir)!r} cannot be created: {e.strerror}; "
            "set WTFLOW_STATE_DIR to a writable folder"
        ) from None


async def prepare_state_dir(config: Config) -> Path:
    """Create the state folder if the run keeps anything in it (its SQLite record or its
    artifacts); returns the artifacts folder."""
    storage = config.storage
    state_dir, artifacts_dir = storage.resolved_state_dir(), storage.resolved_artifacts_dir()
    db_url = config.db.resolved_url(state_dir)
    if (db_url or "").startswith(f"sqlite:///{state_dir}") or artifacts_dir.is_relative_to(state_dir):
        await ensure_state_dir(state_dir)
    return artifacts_dir


# What a state folder holds when only wtflow has used it.
_STATE_ENTRIES = frozenset({"artifacts", "wtflow.db", "wtflow.db-wal", "wtflow.db-shm", "wtflow.db-journal"})


def ensure_private_dir(path: Path) -> None:
    """Create `path` readable by its owner only (state may hold secrets in its record). An
    existing one open to others is closed only when it holds nothing but wtflow's state: a
    folder of the user's given as the state folder (`.`, /tmp, a shared one) keeps its mode."""
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    with contextlib.suppress(OSError):
        if path.stat().st_mode & 0o077 and _STATE_ENTRIES.issuperset(os.listdir(path)):
            os.chmod(path, 0o700)


class OutputOrder:
    """How an attempt's two streams alternated, in bytes, so a reader can interleave the files."""

    LIMIT = 10_000  # alternations kept; past it a reader shows one stream after the other

    def __init__(self) -> None:
        self.segments: list[list[Any]] | None = []

    def add(self, stream: str, size: int) -> None:
        segments = self.segments
        if segments is None:
            return
        if segments and segments[-1][0] == stream:
            segments[-1][1] += size
        elif len(segments) < self.LIMIT:
            segments.append([stream, size])
        else:
            self.segments = None

    def frozen(self) -> tuple[tuple[str, int], ...] | None:
        return None if self.segments is None else tuple((stream, size) for stream, size in self.segments)


def reuse_outputs(sources: dict[str, Path], folder: Path) -> dict[str, Path]:
    """An earlier run's output files in this run's node folder, each at its name below it
    (`stdout`, `result.json`, `wheel/app.whl`): hard links (the bytes stay once on disk, and
    outlive the earlier folder), symbolic links where the two folders are on different file
    systems. Returns each file's new path."""
    make_private_dirs(folder)
    placed: dict[str, Path] = {}
    try:
        for name, source in sources.items():
            target = folder / name
            make_private_dirs(target.parent)  # a declared artifact's own folder
            with contextlib.suppress(FileNotFoundError):
                target.unlink()
            try:
                os.link(source, target)
            except OSError as e:
                if e.errno != errno.EXDEV:
                    raise
                target.symlink_to(source.absolute())
            placed[name] = target
    except OSError:
        # The node will run instead, writing these paths: a link left here would have it
        # overwrite the earlier run's file through it.
        for target in placed.values():
            with contextlib.suppress(OSError):
                target.unlink()
        raise
    return placed
