"""Prints argv[1] numbered lines, then writes its pid to argv[2] and sleeps until killed."""

import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parents[2]))
from tests.procs import write_pids

for i in range(int(sys.argv[1])):
    print(f"line {i}", flush=True)
write_pids(Path(sys.argv[2]), os.getpid())
time.sleep(300)
