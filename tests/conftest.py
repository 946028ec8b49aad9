from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from wtflow import discover

pytest_plugins = ["tests.postgres"]

PROCS = Path(__file__).parent / "procs"


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """No test sees the developer's WTFLOW_* settings, writes outside tmp_path, or leaks workflows."""
    for name in list(os.environ):
        if name.startswith("WTFLOW_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    discover.REGISTRY.clear()
    yield
    discover.REGISTRY.clear()
