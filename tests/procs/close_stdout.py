"""Closes its stdout at once, then writes argv[1] lines to stderr and exits with argv[2]."""

import os
import sys

os.close(1)
for i in range(int(sys.argv[1])):
    os.write(2, f"err {i}\n".encode())
raise SystemExit(int(sys.argv[2]))
