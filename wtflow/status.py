"""The statuses a node or a run can have."""

from __future__ import annotations

import enum
import signal


class Status(enum.StrEnum):
    """Where a node (or a run) stands; the words are used verbatim in the record and the CLI."""

    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    TIMED_OUT = "timed_out"
    CANCELLED = "cancelled"
    SKIPPED = "skipped"
    # A run whose wtflow process died before it could say how it ended.
    CRASHED = "crashed"

    @property
    def is_failure(self) -> bool:
        return self in (Status.FAILED, Status.TIMED_OUT, Status.CANCELLED, Status.CRASHED)

    @property
    def is_final(self) -> bool:
        return self not in (Status.PENDING, Status.RUNNING)


def exit_text(code: object) -> str:
    """How an exit code reads: `exit 2`, `killed by SIGTERM` (a negative code); empty for none."""
    if not isinstance(code, int):
        return ""
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit {code}"
