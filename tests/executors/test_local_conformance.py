"""LocalExecutor against the executor contract."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.executors.conformance import ExecutorConformance
from wtflow.executors import Executor
from wtflow.executors.local import LocalExecutor


class TestLocalExecutor(ExecutorConformance):
    @pytest.fixture
    async def executor(self) -> AsyncIterator[Executor]:
        executor = LocalExecutor(kill_grace=0.5)
        yield executor
        await executor.aclose()
