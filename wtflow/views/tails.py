"""The last lines of each node's output, read from its files within a size budget.

A report inlines the tails so it can be read where the artifacts are not (a CI download);
failed nodes get theirs first and longer (the reason is usually at the end), so a run of
5000 chatty nodes still gives a report of a few MB. Output is someone else's bytes: escape
sequences and control characters are dropped here, HTML escaping is the renderer's job.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass

from wtflow.status import Status
from wtflow.views.timing import Record

TAIL_LINES = 40
TAIL_BYTES = 4 * 1024  # per stream of a node that went well
FAILED_TAIL_BYTES = 16 * 1024  # per stream of a node that failed
BUDGET = 512 * 1024  # output inlined into one report, in all
STREAMS = ("stdout", "stderr")

# CSI and OSC sequences (colours, cursor moves, titles), then any other C0 control but \t and \n.
_ESCAPES = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b.?")
_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


@dataclass(frozen=True)
class Tail:
    """One output file of a node's last attempt, and its end as text when it was read."""

    path: str
    size: int
    text: str | None  # None: not inlined, `note` says why
    skipped: int = 0  # bytes before `text` that are not shown
    note: str = ""
    end: int = 0  # where `text` ends in the file: a live tail goes on from here


def clean(data: bytes) -> str:
    """Output bytes as text a page can show: UTF-8 (bad bytes replaced), see `clean_text`."""
    return clean_text(data.decode("utf-8", errors="replace"))


def clean_text(text: str) -> str:
    """No escape sequences or control characters; a line redrawn with carriage returns (a
    progress bar) shows its last state."""
    text = _ESCAPES.sub("", text).replace("\r\n", "\n")
    if "\r" in text:
        text = "\n".join(line.rpartition("\r")[2] for line in text.split("\n"))
    return _CONTROLS.sub("", text)


def whole_characters(data: bytes) -> bytes:
    """`data` without a UTF-8 character cut off at its end (the rest of it is still to come)."""
    for back in range(1, min(4, len(data)) + 1):
        byte = data[-back]
        if byte < 0x80:  # ASCII: nothing is cut
            return data
        if byte >= 0xC0:  # the lead byte of the last character
            needed = 2 if byte < 0xE0 else 3 if byte < 0xF0 else 4
            return data if back >= needed else data[:-back]
    return data


def read_tail(path: str, *, max_bytes: int, max_lines: int = TAIL_LINES) -> Tail:
    """The last `max_lines` lines of a file, at most `max_bytes` of it."""
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            start = max(0, size - max_bytes)
            f.seek(start)
            data = whole_characters(f.read(size - start))  # not what was written since the fstat
    except FileNotFoundError:
        return Tail(path, 0, None, note="the file is gone (moved or deleted)")
    except OSError as e:
        return Tail(path, 0, None, note=f"the file cannot be read: {e.strerror}")
    end = start + len(data)
    if start > 0 and b"\n" in data:  # begin at a whole line
        data = data[data.index(b"\n") + 1 :]
    lines = data.split(b"\n")
    if len(lines) > max_lines + 1:  # +1: the empty piece after a final newline
        data = b"\n".join(lines[-(max_lines + 1) :])
    return Tail(path, size, clean(data), skipped=end - len(data), end=end)


def collect_tails(nodes: Sequence[Record], *, budget: int = BUDGET) -> dict[str, dict[str, Tail]]:
    """The tail of each stream of each node's last attempt, by node path then stream name."""
    failed = [n for n in nodes if _failed(n)]
    rest = [n for n in nodes if not _failed(n)]
    tails: dict[str, dict[str, Tail]] = {}
    for node in failed + rest:
        attempts = node.get("attempts") or ()
        if not attempts:
            continue
        limit = FAILED_TAIL_BYTES if _failed(node) else TAIL_BYTES
        for stream in STREAMS:
            output = (attempts[-1].get("outputs") or {}).get(stream)
            if output is None:
                continue
            path, size = str(output["path"]), int(output.get("size") or 0)
            if budget <= 0:
                tail = Tail(path, size, None, note="not inlined: the report holds enough output")
            else:
                tail = read_tail(path, max_bytes=min(limit, budget))
                budget -= len(tail.text or "")
            tails.setdefault(node["path"], {})[stream] = tail
    return tails


def _failed(node: Record) -> bool:
    try:
        return Status(node["status"]).is_failure
    except ValueError:
        return False
