"""The fan-out on a Dask cluster: the same 500 echo nodes through the Dask executor on a local
cluster of 2 worker processes, against the local executor, alternately in the same run."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from benchmarks.harness import Context, Figure, Skip, alternate, db_note, run_engine
from benchmarks.shell import _fan

WORKERS = 2
THREADS = 8  # per worker: an echo node is latency, not CPU, as a cluster's nodes mostly are


@contextmanager
def _cluster() -> Iterator[str]:
    try:
        import distributed
    except ImportError:
        raise Skip("dask.distributed is not installed (pip install 'wtflow[dask]')") from None
    with distributed.LocalCluster(
        n_workers=WORKERS, threads_per_worker=THREADS, processes=True, dashboard_address=None,
        host="127.0.0.1",
    ) as cluster:  # fmt: skip
        yield cluster.scheduler_address


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
