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

# A failure the node was allowed (allow_failure=True, its own or an ancestor's): it never fails
# the run, so it must not look like a failure that does.
ALLOWED_STYLE = ("!", "yellow")
ALLOWED_SUFFIX = " (allowed)"
# What the live tree shows of a running node between its attempts and while it is being stopped.
RETRY_STYLE = ("↻", "yellow")
STOPPING_STYLE = ("■", "yellow")


def is_allowed_failure(status: Status, allowed: bool) -> bool:
    return allowed and status in (Status.FAILED, Status.TIMED_OUT)


def status_word(status: Status, allowed: bool) -> str:
    """How a node's outcome reads: its status, or e.g. `failed (allowed)`."""
    return f"{status}{ALLOWED_SUFFIX}" if is_allowed_failure(status, allowed) else str(status)


def status_style(status: Status, allowed: bool) -> tuple[str, str]:
    """The mark and style of a node's outcome."""
    return ALLOWED_STYLE if is_allowed_failure(status, allowed) else STATUS_STYLE[status]


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
    """`text` in the colour of `status` (a Status or its word, e.g. `failed (allowed)`) when colour is on."""
    allowed = status.endswith(ALLOWED_SUFFIX)
    try:
        style = status_style(Status(status.removesuffix(ALLOWED_SUFFIX)), allowed)[1]
    except ValueError:
        return text
    return paint(text, style, enabled)
