"""Ignores SIGTERM, starts a grandchild that ignores it too, writes both pids, waits forever."""

import os
import signal
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parents[2]))
from tests.procs import write_pids

signal.signal(signal.SIGTERM, signal.SIG_IGN)  # inherited by the grandchild across fork
child = os.fork()
if child == 0:
    while True:
        time.sleep(1)
write_pids(Path(sys.argv[1]), os.getpid(), child)
print("ready", flush=True)
while True:
    time.sleep(1)
