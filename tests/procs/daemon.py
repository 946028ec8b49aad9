"""Daemonises the classic way: fork, setsid, fork again; the daemon sleeps for five minutes.

MODE "exit" (default): the leader exits 0 at once and the daemon closes stdin/stdout/stderr.
MODE "wait": the leader waits forever, and the daemon keeps the node's stdout open.
"""

import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parents[2]))
from tests.procs import write_pids

pid_file = Path(sys.argv[1])
mode = sys.argv[2] if len(sys.argv) > 2 else "exit"
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        if mode == "exit":
            os.closerange(0, 3)
        write_pids(pid_file, os.getpid())
        time.sleep(300)
    os._exit(0)
os.wait()
while mode == "wait":
    time.sleep(1)
