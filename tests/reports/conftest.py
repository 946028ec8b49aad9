from __future__ import annotations

import pytest

from tests.cli.conftest import wtfile, wtflow

__all__ = ["wtfile", "wtflow"]


@pytest.fixture(autouse=True)
def _no_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    """These tests say which CI they are in; the machine running them must not."""
    for name in ("GITHUB_ACTIONS", "GITHUB_STEP_SUMMARY", "GITLAB_CI"):
        monkeypatch.delenv(name, raising=False)
