"""A Dask worker's parent-death guard: ends the worker's nodes when the worker dies.

A node's processes are the worker's children; a worker killed with SIGKILL (out of memory, a
lost machine) would leave them running, and PR_SET_PDEATHSIG would not help: it fires when the
*thread* that started the child ends, and it reaches the leader only, not what the leader
started. So each worker process starts one of these, reading a pipe whose other end only the
worker holds. The worker writes `+PGID TOKEN` (the attempt's) when a node starts and `-PGID` when it has ended;
at EOF (the worker is gone, however it went) every group still listed is killed, and so is every
process carrying one of those attempt tokens in its environment (those that left their group; a
run id would also hit the same run's nodes on another worker of this machine).
"""

from __future__ import annotations

import os
import signal
import sys

from wtflow.executors.local import _signal_group, kill_token


def main() -> int:
    groups: dict[int, str] = {}
    for line in sys.stdin.buffer:
        sign, _, rest = line.strip().decode().partition(" ")
        if sign.startswith("+"):
            groups[int(sign[1:])] = rest
        elif sign.startswith("-"):
            groups.pop(int(sign[1:]), None)
    for pgid in groups:
        _signal_group(pgid, signal.SIGKILL)
    for token in set(groups.values()):
        kill_token(token)
    return 0


if __name__ == "__main__":
    signal.signal(
        signal.SIGINT, signal.SIG_IGN
    )  # a Ctrl-C meant for `wtflow cluster` must not stop the guard
    os._exit(main())
