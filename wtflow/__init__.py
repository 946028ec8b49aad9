"""wtflow: run a tree of shell commands and Python functions, with every node's output on disk."""

from wtflow._version import __version__
from wtflow.config import Config, DatabaseConfig, ReportConfig, RunConfig, StorageConfig
from wtflow.discover import workflow
from wtflow.engine import Engine
from wtflow.errors import ConfigError, UsageError, WorkflowError, WtfileError, WtflowError
from wtflow.events import (
    Event,
    NodeFinished,
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
