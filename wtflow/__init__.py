"""wtflow: run a tree of shell commands and Python functions, with every node's output on disk.

Every public name is imported on first use (PEP 562), so that `wtflow --version` or `wtflow list`
need not load the engine, asyncio and the rest: `wtflow.Node` and `from wtflow import Node` work
as ever.
"""

from __future__ import annotations

import importlib

from wtflow._version import __version__

# Not `typing.TYPE_CHECKING`: importing `typing` is a tenth of `wtflow --version`, which needs
# nothing else of it. Type checkers take any name TYPE_CHECKING as true.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from wtflow.config import Config, DatabaseConfig, ReportConfig, RunConfig, StorageConfig
    from wtflow.discover import workflow
    from wtflow.engine import Engine
    from wtflow.errors import ConfigError, UsageError, WorkflowError, WtfileError, WtflowError
    from wtflow.events import (
        Event,
        NodeFinished,
        NodesAdded,
        NodeSpec,
        NodeStarted,
        NodeStopping,
        OutputReceived,
        RunFinished,
        RunStarted,
    )
    from wtflow.executables import Command, PyFunc
    from wtflow.listeners import BaseListener, Listener
    from wtflow.model import Artifact, Node, Secret, Workflow
    from wtflow.status import Status

_WHERE = {
    "Artifact": "wtflow.model",
    "BaseListener": "wtflow.listeners",
    "Command": "wtflow.executables",
    "Config": "wtflow.config",
    "ConfigError": "wtflow.errors",
    "DatabaseConfig": "wtflow.config",
    "Engine": "wtflow.engine",
    "Event": "wtflow.events",
    "Listener": "wtflow.listeners",
    "Node": "wtflow.model",
    "NodeFinished": "wtflow.events",
    "NodesAdded": "wtflow.events",
    "NodeSpec": "wtflow.events",
    "NodeStarted": "wtflow.events",
    "NodeStopping": "wtflow.events",
    "OutputReceived": "wtflow.events",
    "PyFunc": "wtflow.executables",
    "ReportConfig": "wtflow.config",
    "RunConfig": "wtflow.config",
    "RunFinished": "wtflow.events",
    "RunStarted": "wtflow.events",
    "Secret": "wtflow.model",
    "Status": "wtflow.status",
    "StorageConfig": "wtflow.config",
    "UsageError": "wtflow.errors",
    "Workflow": "wtflow.model",
    "WorkflowError": "wtflow.errors",
    "WtfileError": "wtflow.errors",
    "WtflowError": "wtflow.errors",
    "workflow": "wtflow.discover",
}


# Hidden from type checkers: they see the imports above, so a misspelt name stays an error.
if not TYPE_CHECKING:

    def __getattr__(name: str) -> Any:
        try:
            module = _WHERE[name]
        except KeyError:
            raise AttributeError(f"module 'wtflow' has no attribute {name!r}") from None
        value = getattr(importlib.import_module(module), name)
        globals()[name] = value  # once: the next lookup is an ordinary attribute
        return value

    def __dir__() -> list[str]:
        return sorted([*globals(), *_WHERE])


__all__ = [
    "Artifact",
    "BaseListener",
    "Command",
    "Config",
    "ConfigError",
    "DatabaseConfig",
    "Engine",
    "Event",
    "Listener",
    "Node",
    "NodeFinished",
    "NodeSpec",
    "NodeStarted",
    "NodeStopping",
    "NodesAdded",
    "OutputReceived",
    "PyFunc",
    "ReportConfig",
    "RunConfig",
    "RunFinished",
    "RunStarted",
    "Secret",
    "Status",
    "StorageConfig",
    "UsageError",
    "Workflow",
    "WorkflowError",
    "WtfileError",
    "WtflowError",
    "__version__",
    "workflow",
]
