"""Runs a pickled PyFunc in a freshly started interpreter: how a Dask worker runs one.

A Dask worker has threads of its own (its event loop, its task threads, comms), so it never
forks for a PyFunc as the local executor does: the function runs in `python -m
wtflow.executors._spawned FILE`, started like any Command (own session, stdin from /dev/null,
env and cwd). FILE holds the cloudpickled PyFunc; it is removed as soon as it is read.
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

from wtflow.executors._child import _call, _end_descendants, _end_descendants_then_die, become_subreaper


def main(argv: list[str]) -> int:
    import cloudpickle  # shipped with dask.distributed

    for stream in (sys.stdout, sys.stderr):  # as a forked PyFunc has them: output shows as it comes
        stream.reconfigure(line_buffering=True, write_through=True)  # type: ignore[union-attr]
    path = Path(argv[0])
    try:
        func = cloudpickle.loads(path.read_bytes())
    finally:
        path.unlink(missing_ok=True)
    if become_subreaper():  # the same guarantee as a forked PyFunc: its daemons end with it
        signal.signal(signal.SIGTERM, _end_descendants_then_die)
    code = _call(func)
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    _end_descendants()
    return code


if __name__ == "__main__":
    os._exit(main(sys.argv[1:]))
