"""Waiting on a run from outside: read its --events file as it grows."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

Record = dict[str, Any]


def wait_for_event(
    path: Path, wanted: Callable[[Record], bool], *, seen: list[Record], timeout: float = 30
) -> Record:
    """Read new complete lines of the events file until one is `wanted`; keeps every line in `seen`."""
    deadline = time.monotonic() + timeout  # a hang guard, not a speed claim
    while True:
        for record in seen:
            if wanted(record):
                return record
        if path.exists():
            lines = path.read_text().split("\n")[:-1]  # a line without its newline is still being written
            seen[:] = [json.loads(line) for line in lines]
            for record in seen:
                if wanted(record):
                    return record
        assert time.monotonic() < deadline, f"no such event in {path}; saw {[r['event'] for r in seen]}"
        time.sleep(0.02)


def node_event(kind: str, name: str) -> Callable[[Record], bool]:
    return lambda r: r["event"] == kind and r["path"][-1] == name
