"""A recorded attempt's output read back from its files: whole, in the order the streams
arrived (as the terminal showed them), or its last lines. Never a whole file in memory."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import IO

from wtflow.db.read import AttemptInfo
from wtflow.errors import LookupFailed

STREAMS = ("stdout", "stderr")
TAIL_LINES = 20
_TAIL_BYTES = 64 * 1024
_CHUNK = 1 << 20


@dataclass(frozen=True)
class Piece:
    """`size` bytes of one stream's file from `offset` (to its end when None), after `header`."""

    stream: str
    path: Path
    offset: int = 0
    size: int | None = None
    header: str | None = None


def pieces(attempt: AttemptInfo, streams: Sequence[str]) -> list[Piece]:
    """The attempt's output of `streams`, in the order it is to be shown."""
    files = {s: Path(attempt.outputs[s].path) for s in streams if s in attempt.outputs}
    if len(files) < 2:
        return [Piece(s, path) for s, path in files.items()]
    if attempt.output_order is None:  # still running, or too long to keep: one stream after the other
        parts = [Piece(s, path) for s, path in files.items()]
        if sum(_size(part) > 0 for part in parts) < 2:
            return parts
        return [replace(part, header=f"==> {part.stream} <==") for part in parts]
    found: list[Piece] = []
    offsets = dict.fromkeys(files, 0)
    for stream, size in attempt.output_order:
        if stream in files and size > 0:
            found.append(Piece(stream, files[stream], offsets[stream], size))
            offsets[stream] += size
    # Anything written after the order was taken (an escaped child still printing).
    found.extend(Piece(s, path, offsets[s]) for s, path in files.items())
    return found


def has_bytes(parts: Sequence[Piece]) -> bool:
    return any(_size(part) > 0 for part in parts)


def copy(parts: Sequence[Piece], out: IO[bytes]) -> None:
    for part in parts:
        if part.header is not None and _size(part):
            out.write(f"{part.header}\n".encode())
        _copy_piece(part, out)
    out.flush()


def tail(parts: Sequence[Piece], count: int = TAIL_LINES) -> list[str]:
    """The last `count` non-blank lines of the pieces together (reading only their ends)."""
    wanted, chunks = _TAIL_BYTES, []
    for part in reversed(parts):
        size = _size(part)
        take = min(size, wanted)
        if take <= 0:
            continue
        try:
            with part.path.open("rb") as f:
                f.seek(part.offset + size - take)
                chunks.append(f.read(take))
        except FileNotFoundError:
            raise gone(part.path) from None
        wanted -= take
        if wanted <= 0:
            break
    data = b"".join(reversed(chunks))
    lines = [line.decode(errors="replace").rsplit("\r", 1)[-1].rstrip() for line in data.splitlines()]
    return [line for line in lines if line.strip()][-count:]


def read_from(path: Path, offset: int, out: IO[bytes]) -> int:
    """What the file holds past `offset`, written to `out`; how many bytes that was (0 while
    the file does not exist yet)."""
    try:
        with path.open("rb") as f:
            f.seek(offset)
            written = 0
            while chunk := f.read(_CHUNK):
                out.write(chunk)
                written += len(chunk)
    except FileNotFoundError:
        return 0
    out.flush()
    return written


def gone(path: object) -> LookupFailed:
    return LookupFailed(
        f"output file {str(path)!r} is gone (moved or deleted); the record still points there"
    )


def _size(part: Piece) -> int:
    if part.size is not None:
        return part.size
    try:
        return max(0, os.stat(part.path).st_size - part.offset)
    except FileNotFoundError:
        raise gone(part.path) from None


def _copy_piece(part: Piece, out: IO[bytes]) -> None:
    try:
        with part.path.open("rb") as f:
            f.seek(part.offset)
            left = part.size
            while left is None or left > 0:
                chunk = f.read(_CHUNK if left is None else min(left, _CHUNK))
                if not chunk:
                    break
                out.write(chunk)
                if left is not None:
                    left -= len(chunk)
    except FileNotFoundError:
        raise gone(part.path) from None
