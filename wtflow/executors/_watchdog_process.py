"""The watchdog that ends a run's processes when the process running them dies, even by SIGKILL.

LocalExecutor starts this file as a script (`python -I -S _watchdog_process.py PARENT GRACE`: it
imports nothing of wtflow) in a session of its own, with the read end of a pipe as its stdin;
only the parent (the orchestrator, or a Dask worker running nodes) holds the write end. Over the
pipe it hears, one line each:

    run RUN_ID      processes carrying this token in WTFLOW_PROCESS_TOKENS belong to a live run
    + PGID TOKEN    a node's process group started, for the attempt TOKEN (RUN:INDEX:NUMBER)
    - PGID          it ended
    exit            the orchestrator is closing cleanly: end without touching anything
                    (a clean close usually SIGKILLs it instead: it may not even have started)

End of file without `exit` means the parent is gone: every live group, every process carrying a
live run's token and every process carrying a live group's attempt token (one that left its
group) gets SIGTERM, up to GRACE seconds to end, then SIGKILL. A Dask worker names no runs: the
other workers of its machine run nodes of the same runs, so it names only its own attempts.
Between lines it looks every POLL seconds whether its parent is still the one it was started by:
a forked child of the parent (a PyFunc) may hold the write end, and then no end of file comes.
Whatever the pipe still holds is read first, so nothing the parent said before dying is lost, even
when it died while this interpreter was still starting.
"""

from __future__ import annotations

# Its start-up runs beside the run's first nodes, and an interpreter starting up beside the
# orchestrator's posix_spawn holds that up (measured: 1-9 ms a spawn instead of 0.2 ms, while it
# lasts). So only small imports: `_signal` is `signal` without its enums, and there is no
# contextlib and no typing (mypy reads TYPE_CHECKING by its name): 15 ms to start, not 22.
import _signal  # type: ignore[import-not-found]  # no stub: the C module under `signal`
import os
import select
import sys
import time

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Collection, Iterator

TOKEN_VAR = b"WTFLOW_PROCESS_TOKENS="
NAME_PREFIX = b"wtflow:"  # a PyFunc's process name: as _child.NAME_PREFIX
POLL = 0.2  # seconds between looks at the parent, when the pipe is quiet
# Seconds to let lines gather after each read. A reader waiting on the pipe makes every write
# to it a wake-up, and on a busy machine the writer then gives up its CPU to this process: that
# was ~0.2 ms of the orchestrator's time a line, two lines a node.
GATHER = 0.05


def _read_each(name: str) -> Iterator[tuple[int, bytes]]:
    """Each other process on this host, with its /proc/PID/`name`."""
    me = os.getpid()
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit() or int(entry.name) == me:
            continue
        try:
            with open(f"/proc/{entry.name}/{name}", "rb") as f:
                yield int(entry.name), f.read()
        except OSError:  # gone meanwhile, or a stranger's
            continue


def tokens_on_host() -> dict[str, list[int]]:
    """Each token in a process's WTFLOW_PROCESS_TOKENS on this host, with those PIDs.

    A node's processes carry "RUN,RUN:INDEX:ATTEMPT" (after those of any run it runs inside): its
    run's id and its attempt's token, so either finds them. The one scan of /proc behind the
    watchdog, `wtflow kill` and the local executor's sweep for escapees."""
    found: dict[str, list[int]] = {}
    for pid, environ in _read_each("environ"):
        for var in environ.split(b"\0"):
            if var.startswith(TOKEN_VAR):
                for token in set(var[len(TOKEN_VAR) :].split(b",")) - {b""}:
                    found.setdefault(token.decode(errors="replace"), []).append(pid)
                break
    return found


def named_on_host() -> dict[str, list[int]]:
    """For each PyFunc process named after its run (`wtflow:` and 8 characters of the run id, as
    executors/_child.py names them), those 8 characters, with those PIDs: what `wtflow kill`
    finds a PyFunc by, whose environment in procfs is its fork server's, without the token."""
    found: dict[str, list[int]] = {}
    for pid, comm in _read_each("comm"):
        name = comm.strip()
        if name.startswith(NAME_PREFIX):
            found.setdefault(name[len(NAME_PREFIX) :].decode(errors="replace"), []).append(pid)
    return found


def runs_on_host() -> dict[str, list[int]]:
    """Each run id found in a process's WTFLOW_PROCESS_TOKENS on this host, with those PIDs."""
    return {token: pids for token, pids in tokens_on_host().items() if ":" not in token}


def token_holders(tokens: Collection[str]) -> list[int]:
    """PIDs whose WTFLOW_PROCESS_TOKENS holds one of `tokens` (run ids, attempt tokens)."""
    if not tokens:
        return []
    return sorted({pid for token, pids in tokens_on_host().items() if token in tokens for pid in pids})


def _signal_all(groups: set[int], pids: list[int], sig: int) -> None:
    for kill, targets in ((os.killpg, groups), (os.kill, pids)):
        for target in targets:
            try:
                kill(target, sig)
            except OSError:  # gone meanwhile
                continue


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except OSError:
        return False
    return True


def end_everything(groups: set[int], tokens: set[str], grace: float) -> None:
    """SIGTERM to every group and holder of one of `tokens`, up to `grace` seconds, then SIGKILL."""
    _signal_all(groups, token_holders(tokens), _signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        # A zombie still counts as alive here, so the wait may run its full grace: bounded.
        holders = token_holders(tokens)
        if not holders and not any(_group_alive(g) for g in groups):
            return
        time.sleep(0.05)
    _signal_all(groups, token_holders(tokens), _signal.SIGKILL)


def main(argv: list[str]) -> int:
    """`_watchdog_process.py PARENT GRACE`, the pipe's read end as stdin: listen, and end
    everything unless the orchestrator kills this process first (its clean close)."""
    parent, grace = int(argv[1]), float(argv[2])
    _signal.signal(_signal.SIGINT, _signal.SIG_IGN)  # a Ctrl-C at the terminal is for the orchestrator
    _listen(parent, grace)
    return 0


def _listen(parent: int, grace: float) -> None:
    groups: dict[int, str] = {}  # each live group, with its attempt's token
    run_ids: set[str] = set()
    pending = b""
    while True:
        ready, _, _ = select.select([0], [], [], POLL)
        if not ready:
            if os.getppid() != parent:  # orphaned, and the pipe holds nothing more
                break
            continue
        chunk = os.read(0, 1 << 20)
        if not chunk:  # end of file: the parent is gone
            break
        *lines, pending = (pending + chunk).split(b"\n")
        for line in lines:
            word, _, arg = line.partition(b" ")
            if word == b"+":
                pgid, _, token = arg.partition(b" ")
                groups[int(pgid)] = token.decode()
            elif word == b"-":
                groups.pop(int(arg), None)
            elif word == b"run":
                run_ids.add(arg.decode())
            elif word == b"exit":
                return
        time.sleep(GATHER)
    end_everything(set(groups), run_ids | (set(groups.values()) - {""}), grace)


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
