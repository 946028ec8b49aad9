"""The consoles: listeners that show a run on the terminal.

    RawConsole     (raw.py)     the nodes' own bytes: what the Python API shows by default
    PlainConsole   (plain.py)   `[node/path] line` prefixes with start and end lines: CI and pipes
    LiveConsole    (live.py)    a rich tree redrawn in place: the CLI on a terminal
    RunReport      (summary.py) the failures and the one-line summary at the end of a CLI run

All of them write through a thread of their own (writer.py), so a terminal or pipe that does
not keep up never holds up the run. `console_for` is the one place a console mode becomes one.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

from wtflow.terminal import is_terminal

if TYPE_CHECKING:
    from wtflow.consoles.plain import PlainConsole
    from wtflow.consoles.raw import RawConsole
    from wtflow.consoles.summary import RunReport
    from wtflow.listeners import Listener

__all__ = ["PlainConsole", "RawConsole", "RunReport", "console_for"]

# Each console is imported when it is asked for: a quiet run (a script's, a benchmark's) imports
# none of them, and a raw one not the plain console's.
_MODULES = {"PlainConsole": "plain", "RawConsole": "raw", "RunReport": "summary"}


def __getattr__(name: str) -> Any:
    if name not in _MODULES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from importlib import import_module

    return getattr(import_module(f"wtflow.consoles.{_MODULES[name]}"), name)


def console_for(mode: str, *, color: str, verbose: bool) -> Listener | None:
    """The listener that shows a run in `mode` (raw, plain, live, quiet); None for quiet.

    `color` is --color's choice (auto, always, never). `live` falls back to `plain` where stdout
    is not a terminal (a CI log, a pipe), where a redrawn tree would be noise."""
    if mode == "live" and not is_terminal(sys.stdout):
        mode = "plain"
    if mode == "raw":
        from wtflow.consoles.raw import RawConsole

        return RawConsole()
    if mode == "plain":
        from wtflow.consoles.plain import PlainConsole

        return PlainConsole(verbose=verbose)
    if mode == "live":
        from wtflow.consoles.live import LiveConsole  # only a terminal pays for importing rich

        # None leaves it to rich, which honours NO_COLOR; --color always/never overrides it.
        return LiveConsole(sys.stdout, no_color={"never": True, "always": False}.get(color))
    return None
