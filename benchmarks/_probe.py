"""Runs one wtflow workflow in a fresh interpreter and prints its time and memory as JSON.

A separate process, so the peak RSS is the orchestrator's alone (not the harness's, nor a
previous workload's). `python -m benchmarks._probe bigout '<json>'` / `... tree '<json>'`.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks.harness import config
from wtflow import Command, Engine, Node, Workflow


def _status_mib(field: str) -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return 0.0


def _rss_mib() -> float:
    return _status_mib("VmRSS")


def _peak_mib() -> float:
    # VmHWM, not ru_maxrss: the latter keeps the peak of the process we were forked from (the
    # harness), so every probe reported the same number whatever it did.
    return _status_mib("VmHWM")


def bigout(cmd: str, folder: str, console: str = "quiet") -> dict[str, float]:
    wf = Workflow(name="bigout", root=Node(name="big", executable=Command(cmd)))
    # A fresh record in the folder, as a CI job has: the harness's shared one would be opened
    # through SQLAlchemy, whose import (~10 MiB) is no part of a user's run.
    fresh = f"sqlite:///{folder}/wtflow.db"
    settings: dict[str, Any] = {"run.console": console, "db.url": fresh}
    engine = Engine(wf, config(Path(folder), **settings))
    if console != "quiet":  # the console writes to a file, as under CI (the JSON goes to RESULT)
        Path(folder).mkdir(parents=True, exist_ok=True)
        with open(Path(folder) / "console", "wb") as f:
            os.dup2(f.fileno(), 1)
    start = time.perf_counter()
    code = engine.run()
    took = time.perf_counter() - start
    out = Path(engine.run_dir or ".") / "big" / "stdout"
    return {"seconds": took, "code": code, "size": out.stat().st_size, "peak_mib": _peak_mib()}


def tree(shape: list[int], folder: str, run: bool) -> dict[str, float]:
    import wtflow.db.rows  # noqa: F401  # now, so the per-node figure does not count SQLAlchemy
    from benchmarks.shell import _big_tree

    empty = _rss_mib()
    wf, commands = _big_tree(*shape)
    built = _rss_mib()
    code = Engine(wf, config(Path(folder))).run() if run else 0
    return {"code": code, "nodes": len(commands), "empty_mib": empty, "built_mib": built,
            "after_mib": _rss_mib(), "peak_mib": _peak_mib()}  # fmt: skip


if __name__ == "__main__":
    RESULT = os.dup(1)  # stdout as given: fd 1 may become the console's file
    kind, args = sys.argv[1], json.loads(sys.argv[2])
    result = bigout(**args) if kind == "bigout" else tree(**args)
    os.write(RESULT, json.dumps(result).encode() + b"\n")
