"""The watchdog that ends a run's processes when the orchestrator dies, even by SIGKILL.

LocalExecutor starts this file as a script (`python -I -S _watchdog_process.py PARENT GRACE`: it
imports nothing of wtflow) in a session of its own, with the read end of a pipe as its stdin;
only the orchestrator holds the write end. Over the pipe it hears, one line each:

    run RUN_ID      processes carrying this token in WTFLOW_PROCESS_TOKENS belong to a live run
    + PGID          a node's process group started
    - PGID          it ended
    exit            the orchestrator is closing cleanly: end without touching anything
                    (a clean close usually SIGKILLs it instead: it may not even have started)

End of file without `exit` means the orchestrator is gone: every live group and every process
carrying a live run's token gets SIGTERM, up to GRACE seconds to end, then SIGKILL. The parent-
death signal is a second guard, for a write end that another fork of the orchestrator still holds.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import sys
import time

TOKEN_VAR = b"WTFLOW_PROCESS_TOKENS="
_PR_SET_PDEATHSIG = 1


class _OrphanedError(Exception):
    pass


def _orphaned(signum: int, frame: object) -> None:
    signal.signal(signal.SIGUSR1, signal.SIG_IGN)  # once: the clean-up must not be interrupted
    raise _OrphanedError


def _guard_parent_death(parent: int) -> None:
    signal.signal(signal.SIGUSR1, _orphaned)
    with contextlib.suppress(Exception):  # no prctl (not Linux): the pipe alone is the guard
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGUSR1)
    if os.getppid() != parent:  # it died before the guard was set
        raise _OrphanedError


def runs_on_host() -> dict[str, list[int]]:
    """Each run id found in a process's WTFLOW_PROCESS_TOKENS on this host, with those PIDs."""
    found: dict[str, list[int]] = {}
    me = os.getpid()
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit() or int(entry.name) == me:
            continue
        try:
            with open(f"/proc/{entry.name}/environ", "rb") as f:
                environ = f.read()
        except OSError:  # gone meanwhile, or a stranger's
            continue
        for var in environ.split(b"\0"):
            if var.startswith(TOKEN_VAR):
                # "RUN,RUN:INDEX:ATTEMPT", after those of any run this one runs inside
                runs = {
                    t.split(b":", 1)[0].decode(errors="replace") for t in var[len(TOKEN_VAR) :].split(b",")
                }
                for run_id in runs - {""}:
                    found.setdefault(run_id, []).append(int(entry.name))
                break
    return found


def token_holders(run_ids: set[str]) -> list[int]:
    """PIDs whose WTFLOW_PROCESS_TOKENS names one of these runs."""
    if not run_ids:
        return []
    return sorted({pid for run_id, pids in runs_on_host().items() if run_id in run_ids for pid in pids})


def _signal_all(groups: set[int], pids: list[int], sig: int) -> None:
    for pgid in groups:
        with contextlib.suppress(OSError):
            os.killpg(pgid, sig)
    for pid in pids:
        with contextlib.suppress(OSError):
            os.kill(pid, sig)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except OSError:
        return False
    return True


def end_everything(groups: set[int], run_ids: set[str], grace: float) -> None:
    """SIGTERM to every group and token holder, up to `grace` seconds, then SIGKILL."""
    _signal_all(groups, token_holders(run_ids), signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        # A zombie still counts as alive here, so the wait may run its full grace: bounded.
        holders = token_holders(run_ids)
        if not holders and not any(_group_alive(g) for g in groups):
            return
        time.sleep(0.05)
    _signal_all(groups, token_holders(run_ids), signal.SIGKILL)


def main(argv: list[str]) -> int:
    """`_watchdog_process.py PARENT GRACE`, the pipe's read end as stdin: listen, and end
    everything unless the orchestrator kills this process first (its clean close)."""
    parent, grace = int(argv[1]), float(argv[2])
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a Ctrl-C at the terminal is for the orchestrator
    _listen(parent, grace)
    return 0


def _listen(parent: int, grace: float) -> None:
    groups: set[int] = set()
    run_ids: set[str] = set()
    pending = b""
    try:
        _guard_parent_death(parent)
        while chunk := os.read(0, 65536):
            *lines, pending = (pending + chunk).split(b"\n")
            for line in lines:
                word, _, arg = line.partition(b" ")
                if word == b"+":
                    groups.add(int(arg))
                elif word == b"-":
                    groups.discard(int(arg))
                elif word == b"run":
                    run_ids.add(arg.decode())
                elif word == b"exit":
                    return
    except _OrphanedError:
        pass
    try:
        end_everything(groups, run_ids, grace)
    except _OrphanedError:  # the parent-death signal came after the end of file: start again
        end_everything(groups, run_ids, grace)


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
