"""Subscribers to the engine's events, and the one factory that builds a run's default set.

    Listener (protocol)      handle(event) for every event, close() once at the end
    console_for(config)      the console of `config.run.console`: raw, plain, live (a terminal
                             only; plain otherwise) or None for quiet
    default_listeners(...)   the recorder when the config has a database, then the console
    Fanout                   a run's listeners: events to each, a broken one dropped, each closed once

The factory imports the recorder and the consoles only when asked for them, so a run that does
not record never imports SQLAlchemy, and the engine imports neither.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

from wtflow.events import Event, OutputReceived

if TYPE_CHECKING:
    from wtflow.config import Config


class Listener(Protocol):
    """Receives events; `handle` must return quickly (enqueue, don't block the loop).

    A listener whose `wants_output` is False is not sent OutputReceived (the bytes are in the
    artifact files; NodeFinished says how the two streams alternated). A listener that raises
    from `handle` is dropped with a warning and not sent anything more, but is still closed."""

    @property
    def wants_output(self) -> bool: ...

    def handle(self, event: Event) -> None: ...

    def close(self) -> list[str]:
        """Called exactly once, after RunFinished (or when the run is abandoned): flush, release,
        and return the problems to report (one line each, e.g. events the database did not take);
        an empty list when all went well. Problems are values, not exceptions: the run has ended
        and its exit code stands."""
        ...


class BaseListener:
    """Defaults for a listener: sent output too, nothing to report at the end."""

    wants_output = True

    def handle(self, event: Event) -> None:
        pass

    def close(self) -> list[str]:
        return []


def console_for(config: Config, *, color: str = "auto", verbose: bool = False) -> Listener | None:
    """The listener that shows a run in `config.run.console` mode; None for quiet.

    `color` is the CLI's --color (auto, always, never); `live` falls back to `plain` where stdout
    is not a terminal (a CI log, a pipe), where a redrawn tree would be noise."""
    mode = config.run.console
    if mode == "raw":
        from wtflow.console import RawConsole

        return RawConsole()
    if mode == "live":
        from wtflow.terminal import is_terminal

        if is_terminal(sys.stdout):
            from rich.console import Console  # only a terminal pays for importing rich

            from wtflow.live_tree import LiveConsole

            # None leaves it to rich, which honours NO_COLOR; --color always/never overrides it.
            no_color = {"never": True, "always": False}.get(color)
            return LiveConsole(Console(file=sys.stdout, highlight=False, no_color=no_color))
        mode = "plain"
    if mode == "plain":
        from wtflow.console import PlainConsole

        return PlainConsole(verbose=verbose)
    return None


def default_listeners(config: Config, *, console: Listener | None = None) -> list[Listener]:
    """The recorder if the config names a database, then `console` (else the config's console).

    Raises RecorderError before anything runs when the database cannot be reached."""
    listeners: list[Listener] = []
    db_url = config.db.resolved_url(config.storage.resolved_state_dir())
    if db_url is not None:
        from wtflow.db.recorder import Recorder  # only runs that record pay for SQLAlchemy

        listeners.append(Recorder.connect(db_url))
    chosen = console if console is not None else console_for(config)
    if chosen is not None:
        listeners.append(chosen)
    return listeners


class Fanout:
    """Sends each event to every listener of a run and closes each exactly once.

    A listener that raises from `handle` (a closed pipe, a bug) is dropped with a problem noted:
    it must not stop the run. It is still closed at the end."""

    def __init__(self, listeners: Sequence[Listener], problems: list[str]) -> None:
        self._all = list(listeners)
        self._unclosed = list(listeners)
        # A listener written before `wants_output` was part of the protocol is sent output.
        self._output = [x for x in self._all if getattr(x, "wants_output", True)]
        self.problems = problems

    @property
    def wants_output(self) -> bool:
        return bool(self._output)

    def emit(self, event: Event) -> None:
        self._send(event, self._all)

    def emit_output(self, event: OutputReceived) -> None:
        self._send(event, self._output)

    def _send(self, event: Event, listeners: list[Listener]) -> None:
        for listener in list(listeners):
            try:
                listener.handle(event)
            except Exception as e:
                for group in (self._all, self._output):
                    if listener in group:
                        group.remove(listener)
                self.problems.append(f"{type(listener).__name__} stopped: {e}")

    def close_next(self) -> bool:
        """Close one listener not yet closed; False when none is left (so a caller can close
        them one by one on a worker thread, or all at once when the loop is gone)."""
        if not self._unclosed:
            return False
        listener = self._unclosed.pop(0)
        try:
            self.problems.extend(listener.close() or ())  # None: a listener from before close() said
        except Exception as e:
            self.problems.append(f"{type(listener).__name__}: {e}")
        return True
