"""A real local Dask cluster for the Dask executor's tests: 2 worker processes, 1 thread each,
each offering the resource GPU=1.

Each test module starts its own (a module-scoped fixture): starting one takes seconds."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from distributed import LocalCluster

distributed = pytest.importorskip(
    "distributed", reason="dask.distributed is not installed (pip install 'wtflow[dask]')"
)


def start_cluster() -> LocalCluster:
    started: LocalCluster = distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        # A free port: None still serves /metrics on 8787, which another cluster may hold.
        dashboard_address=":0",
        host="127.0.0.1",
        resources={"GPU": 1},  # a label for Node(resources=...) to ask for; no GPU is needed
    )
    return started


@pytest.fixture(scope="module")
def cluster() -> Iterator[LocalCluster]:
    with start_cluster() as running:
        yield running
