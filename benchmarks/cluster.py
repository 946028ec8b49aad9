"""The fan-out on a Dask cluster: the same 500 echo nodes through the Dask executor on a local
cluster of 2 worker processes, against the local executor, alternately in the same run."""

from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from benchmarks.harness import Context, Figure, Skip, alternate, db_note, run_engine
from benchmarks.shell import _fan

WORKERS = 2
THREADS = 8  # per worker: an echo node is latency, not CPU, as a cluster's nodes mostly are


@contextmanager
def _cluster() -> Iterator[str]:
    """`wtflow cluster` in a process of its own: the scheduler must not share the engine's GIL."""
    if importlib.util.find_spec("distributed") is None:
        raise Skip("dask.distributed is not installed (pip install 'wtflow[dask]')")
    argv = [sys.executable, "-m", "wtflow", "cluster", "--workers", str(WORKERS), "--threads", str(THREADS),
            "--port", "0"]  # fmt: skip
    with subprocess.Popen(argv, stdout=subprocess.PIPE, start_new_session=True) as cluster:
        try:
            assert cluster.stdout is not None
            first = cluster.stdout.readline().decode()
            if not first.startswith("scheduler "):
                raise Skip(f"wtflow cluster did not start: {first!r}")
            yield first.split()[1]
        finally:
            os.killpg(cluster.pid, signal.SIGINT)
            cluster.wait()


def dask(ctx: Context) -> list[Figure]:
    n = ctx.size(500, 50)
    with _cluster() as address, ctx.folder() as folder:
        counter = iter(range(10**6))

        def local() -> float:
            return run_engine(_fan(n), folder / f"l{next(counter)}")

        def remote() -> float:
            return run_engine(_fan(n), folder / f"d{next(counter)}", **_on(address))

        b, w = alternate(ctx.reps, local, remote)
    return [Figure(f"fan-out on Dask: {n} parallel echo, {WORKERS} local workers x {THREADS} threads",
                   "local executor, same tree", "s", b, w, "<= 2x",
                   f"artifacts on, {db_note()}; max_parallel = the cluster's threads")]  # fmt: skip


def _on(address: str) -> dict[str, Any]:
    return {"run.executor": address}
