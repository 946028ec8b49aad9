"""Writes argv[1] bytes to stdout and argv[2] to stderr, never a newline, from one fixed buffer."""

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parents[2]))
from tests.procs import PATTERN

left = {1: int(sys.argv[1]), 2: int(sys.argv[2]) if len(sys.argv) > 2 else 0}
view = memoryview(PATTERN)
while any(left.values()):
    for fd in (1, 2):
        if left[fd]:
            left[fd] -= os.write(fd, view[: min(left[fd], len(view))])
