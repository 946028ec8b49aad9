"""wtflow: run a tree of shell commands and Python functions, with every node's output on disk."""

from wtflow._version import __version__
from wtflow.config import Config, DatabaseConfig, RunConfig, StorageConfig
from wtflow.discover import workflow
from wtflow.engine import Engine
from wtflow.errors import ConfigError, UsageError, WorkflowError, WtfileError, WtflowError
from wtflow.executables import Command, PyFunc
from wtflow.model import Artifact, Node, Secret, Workflow
from wtflow.status import Status

__all__ = [
    "Artifact",
    "Command",
    "Config",
    "ConfigError",
    "DatabaseConfig",
    "Engine",
    "Node",
    "PyFunc",
    "RunConfig",
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
