"""Errors wtflow raises on purpose.

    WtflowError                  base of every error wtflow raises on purpose
    ├── UsageError               the user can fix it; the CLI exits 2
    │   ├── ConfigError          bad INI value, bad WTFLOW_* value, unknown key
    │   ├── WorkflowError        invalid tree: bad name, node placed twice, bad timeout
    │   ├── WtfileError          wtfile.py missing, fails to import, duplicate @workflow name
    │   ├── LookupFailed         unknown workflow, run id or node in the CLI
    │   └── RecorderError        the database cannot be reached or used when a run starts

A failing node is never an exception: it is a status in the record.
"""

from __future__ import annotations


class WtflowError(Exception):
    """Base of every error wtflow raises on purpose."""


class UsageError(WtflowError):
    """Something the user can fix: bad settings, bad workflow, bad arguments."""


class ConfigError(UsageError, ValueError):
    """A setting has a bad value or an unknown name."""


class WorkflowError(UsageError, ValueError):
    """The workflow tree is invalid."""


class WtfileError(UsageError):
    """A wtfile could not be found or loaded."""


class LookupFailed(UsageError, LookupError):
    """A workflow, run or node named by the user does not exist."""


class RecorderError(UsageError):
    """The database could not be reached or used; a failure mid-run is reported, not raised."""


def shown(value: object, limit: int = 60) -> str:
    """`repr(value)`, cut short: an error message stays one readable line whatever it quotes."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[: limit - 5]}...{text[-2:]}"
