"""Small misbehaving child programs, run with this interpreter as node commands (not tests).

    stubborn.py PIDFILE        ignores SIGTERM, and so does the grandchild it starts
    daemon.py PIDFILE [MODE]   double fork + setsid; the leader exits (or waits, MODE=wait)
    flood.py OUT [ERR]         OUT bytes to stdout and ERR to stderr, never a newline
    close_stdout.py LINES CODE closes its stdout, then writes LINES lines to stderr, exits CODE
    chatty.py LINES PIDFILE    prints LINES lines, writes its pid, then sleeps (to be killed)

Each writes its PIDFILE atomically (temp file + rename), so a test that sees the file sees
every pid in it; tests poll for the file as a readiness signal, never sleep on a guess.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

PROCS = Path(__file__).parent

# The byte pattern flood.py writes: bytes 0..255 except newline, repeated.
PATTERN = bytes(b for b in range(256) if b != 10) * 4096


def argv(script: str, *args: object) -> list[str]:
    """The argv that runs tests/procs/<script> with this interpreter."""
    return [sys.executable, str(PROCS / script), *map(str, args)]


def wait_for_pids(path: Path, timeout: float = 30.0) -> list[int]:
    """Wait for a child's pid file (a hang guard, not a speed claim) and return its pids."""
    deadline = time.monotonic() + timeout
    while not path.exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{path} never appeared")
        time.sleep(0.01)
    return [int(p) for p in path.read_text().split()]


def write_pids(path: Path, *pids: int) -> None:
    """Used by the children: all pids appear at once."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(" ".join(map(str, pids)))
    tmp.rename(path)
