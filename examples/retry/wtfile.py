"""Retries and optional steps. Two workflows in one file, so name the one to run:

wtflow -f examples/retry/wtfile.py run flaky      # fails twice, passes on attempt 3: exit 0
wtflow -f examples/retry/wtfile.py run broken     # fails on every attempt: exit 1
"""

import os
import sys
import tempfile
from pathlib import Path

import wtflow


def flaky_download() -> None:
    """Fails with exit 75 (EX_TEMPFAIL) on its first two attempts in a run, then succeeds."""
    counter = Path(tempfile.gettempdir()) / f"wtflow-example-{os.environ['WTFLOW_RUN_ID']}"
    attempt = int(counter.read_text()) + 1 if counter.exists() else 1
    counter.write_text(str(attempt))
    if attempt < 3:
        print(f"attempt {attempt}: connection reset", file=sys.stderr)
        sys.exit(75)
    counter.unlink()
    print(f"attempt {attempt}: downloaded")


@wtflow.workflow
def flaky() -> wtflow.Node:
    return wtflow.Node(
        name="flaky",
        children=[
            # Retried only for exit 75, after 0.1 s then 0.2 s (with jitter).
            wtflow.Node(
                name="download",
                executable=wtflow.PyFunc(func=flaky_download),
                retries=2,
                retry_delay=0.1,
                retry_backoff=2,
                retry_on=(75,),
            ),
            # An optional step: its failure is recorded and shown, but the run still succeeds.
            wtflow.Node(
                name="notify",
                executable=wtflow.Command("echo 'chat server unreachable' >&2; exit 1"),
                allow_failure=True,
            ),
            wtflow.Node(name="publish", executable=wtflow.Command("echo published")),
        ],
    )


@wtflow.workflow
def broken() -> wtflow.Node:
    return wtflow.Node(
        name="broken",
        children=[
            wtflow.Node(
                name="migrate",
                executable=wtflow.Command("echo 'error: database is locked' >&2; exit 3"),
                retries=1,
                retry_delay=0.1,
            ),
            wtflow.Node(name="deploy", executable=wtflow.Command("echo never runs")),
        ],
    )
