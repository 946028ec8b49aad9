"""wtflow: run a tree of shell commands and Python functions, with every node's output on disk."""

from wtflow.config import Config, DatabaseConfig, ReportConfig, RunConfig, StorageConfig
from wtflow.discover import workflow
from wtflow.engine import Engine
from wtflow.errors import ConfigError, UsageError, WorkflowError, WtfileError, WtflowError
from wtflow.events import (
    Event,
    Listener,
    NodeFinished,
    NodeSpec,
    NodeStarted,
    OutputReceived,
    RunFinished,
    RunStarted,
)
from wtflow.executables import Command, PyFunc
from wtflow.model import Artifact, Node, Secret, Workflow
from wtflow.status import Status

__version__ = "0.1.0"

__all__ = [
    "Artifact",
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
