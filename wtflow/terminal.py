"""The terminal rules in one place: what counts as a terminal, when colour is wanted, and how
each status looks (its mark and colour), for the consoles and the history commands alike."""

from __future__ import annotations

import os
from typing import IO

from wtflow.status import Status

# Style names are rich's; ANSI maps the same names for the plain-text writers.
ANSI = {"red": "31", "green": "32", "yellow": "33", "cyan": "36", "dim": "2", "bold": "1"}

STATUS_STYLE: dict[Status, tuple[str, str]] = {  # mark, style
    Status.PENDING: ("·", "dim"),
    Status.RUNNING: ("▶", "cyan"),
    Status.SUCCEEDED: ("✓", "green"),
    Status.FAILED: ("✗", "red"),
    Status.TIMED_OUT: ("⏱", "red"),
    Status.CANCELLED: ("⊘", "yellow"),
    Status.SKIPPED: ("-", "dim"),
    Status.CRASHED: ("✗", "red"),
}


def is_terminal(stream: IO[str]) -> bool:
    return stream.isatty() and os.environ.get("TERM") != "dumb"


def color_wanted(choice: str, stream: IO[str]) -> bool:
    """--color always|never|auto; auto means a terminal and no NO_COLOR (https://no-color.org)."""
    if choice != "auto":
        return choice == "always"
    return not os.environ.get("NO_COLOR") and is_terminal(stream)


def paint(text: str, style: str, enabled: bool) -> str:
    """`text` in an ANSI style (a name of ANSI) when colour is on."""
    code = ANSI.get(style)
    return f"\x1b[{code}m{text}\x1b[0m" if enabled and code else text


def paint_status(text: str, status: str, enabled: bool) -> str:
    """`text` in the colour of `status` (a Status or its word) when colour is on."""
    try:
        style = STATUS_STYLE[Status(status)][1]
    except ValueError:
        return text
    return paint(text, style, enabled)
