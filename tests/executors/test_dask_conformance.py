"""DaskExecutor against the executor contract, on a real LocalCluster (2 processes, 1 thread each)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import pytest

from tests.executors.conformance import ExecutorConformance
from tests.executors.dask_cluster import cluster
from wtflow.executors import Executor
from wtflow.executors.dask import DaskExecutor

__all__ = ["cluster"]

if TYPE_CHECKING:
    from distributed import LocalCluster


class TestDaskExecutor(ExecutorConformance):
    @pytest.fixture
    async def executor(self, cluster: LocalCluster) -> AsyncIterator[Executor]:
        executor = DaskExecutor(cluster.scheduler_address, kill_grace=0.5)
        yield executor
        await executor.aclose()
