"""What the Dask executor runs on the scheduler itself (`Client.run_on_scheduler`).

Sent by value (cloudpickle), not by reference: a scheduler without wtflow installed runs it too.
So it imports nothing of wtflow, and nothing that a scheduler lacks.
"""

from __future__ import annotations

from typing import Any


def release_claims(names: list[str], dask_scheduler: Any) -> None:
    """Release the claims (Dask MultiLocks, one per attempt) of ended attempts, whoever holds
    them, and forget their names: the extension keeps an empty entry for every released lock."""
    locks = dask_scheduler.extensions["multi_locks"]
    for name in names:
        for holder in list(locks.locks.get(name, ())):
            if holder in locks.requests:
                locks.release(id=holder)
        if not locks.locks.get(name):
            locks.locks.pop(name, None)
