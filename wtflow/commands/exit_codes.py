"""What `wtflow` returns: the codes every command and the error boundary (cli.main) share."""

from __future__ import annotations

EXIT_OK = 0  # every counted node succeeded (or the command did what it was asked)
EXIT_FAILED = 1  # a node failed or timed out
EXIT_USAGE = 2  # usage, configuration, wtfile or database error: one line on stderr
EXIT_INTERNAL = 3  # a bug in wtflow: a crash log is written
EXIT_INTERRUPTED = 130  # Ctrl-C (143 after SIGTERM: 128 + the signal)
