"""What the history commands (`runs`, `show`, `logs`) share: opening the record the settings
name, read-only, and the text forms of its times, exit codes and statuses."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import IO, TYPE_CHECKING

from wtflow.config import Config
from wtflow.status import Status
from wtflow.terminal import color_wanted, paint, paint_status
from wtflow.views.timing import seconds_text

if TYPE_CHECKING:
    from wtflow.db.read import NodeInfo, Reader

RUN_HELP = "run id, unique prefix, or last (the newest run, also one still going on)"


@contextmanager
def reading(config: Config) -> Iterator[Reader]:
    """The record, read-only (it never upgrades, creates or marks anything)."""
    from wtflow.db.read import open_record, record_url

    # The default database lives in the project's state folder: none yet means nothing ran here.
    with open_record(record_url(config), missing_folder_is_empty=config.db.url is None) as reader:
        yield reader


def positive(raw: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{raw!r} is not a whole number >= 1; use e.g. 2")
    return value


def print_json(value: object) -> None:
    json.dump(value, sys.stdout, indent=2, default=str)
    sys.stdout.write("\n")


class Painter:
    """ANSI colour for statuses when writing to a terminal (NO_COLOR and --color respected)."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled

    @classmethod
    def for_stream(cls, stream: IO[str], args: argparse.Namespace) -> Painter:
        return cls(color_wanted(getattr(args, "color", None) or "auto", stream))

    def status(self, text: str, status: str) -> str:
        return paint_status(text, status, self.enabled)

    def node(self, text: str, node: NodeInfo) -> str:
        """An allowed failure in the colour of a warning: it did not fail the run."""
        if node.failed_allowed:
            return paint(text, "yellow", self.enabled)
        return paint_status(text, node.status, self.enabled)

    def bold(self, text: str) -> str:
        return paint(text, "bold", self.enabled)


# Counts read most-telling first.
_ORDER = [Status.FAILED, Status.TIMED_OUT, Status.CRASHED, Status.CANCELLED, Status.RUNNING,
          Status.SUCCEEDED, Status.SKIPPED, Status.PENDING]  # fmt: skip


def count_text(counts: dict[str, int]) -> str:
    """`1 failed, 1 failed (allowed), 2 succeeded`."""

    def rank(item: tuple[str, int]) -> tuple[int, str]:
        status, allowed = item[0].removesuffix(" (allowed)"), item[0].endswith(" (allowed)")
        try:
            return _ORDER.index(Status(status)) * 2 + allowed, item[0]
        except ValueError:
            return len(_ORDER) * 2, item[0]

    return ", ".join(f"{n} {status}" for status, n in sorted(counts.items(), key=rank))


def local_time(value: datetime) -> str:
    return value.astimezone().strftime("%Y-%m-%d %H:%M:%S")


def duration(start: datetime | None, end: datetime | None, status: str) -> str:
    if start is None:
        return ""
    if end is None:
        if status != Status.RUNNING:
            return "?"
        end = datetime.now(UTC)
    return seconds_text((end - start).total_seconds(), running=status == Status.RUNNING)


def columns(rows: Sequence[tuple[str, ...]]) -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return ["  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip() for r in rows]
