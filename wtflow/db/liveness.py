"""Whether a run recorded as running has lost its wtflow process, without SQLAlchemy: the
writers settle such runs (db/schema.py, db/lite.py) and the readers show them crashed."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

# A run of another host whose heartbeat is this old is taken for dead (recorder.HEARTBEAT is 30 s).
STALE = timedelta(minutes=5)


@dataclass(frozen=True)
class DeathRule:
    """Whether a run recorded as running has lost its wtflow process: on this host, a process
    that no longer exists; elsewhere, a heartbeat that stopped STALE ago (a run recorded before
    heartbeats has nothing to judge by, so it stays running)."""

    host: str
    stale_before: datetime

    @classmethod
    def now(cls) -> DeathRule:
        return cls(socket.gethostname(), datetime.now(UTC) - STALE)

    def is_dead(self, host: str, pid: int, heartbeat: datetime | None) -> bool:
        if host == self.host:
            return not _alive(pid)
        return heartbeat is not None and heartbeat < self.stale_before


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
