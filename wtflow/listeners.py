"""Subscribers to the engine's events, and the one factory that builds a run's default set.

    Listener (protocol)      handle(event) for every event, close() once at the end
    default_listeners(...)   the run's journal (reports/journal.py), the reporters the settings
                             ask for (reports/), the recorder when
                             the config has a database, then the console of `config.run.console`
                             (consoles.console_for) unless a CI log replaces it, and last the
                             pruner of `[storage] keep_runs` (db/retention.py)
    Fanout                   a run's listeners: events to each, a broken one dropped, each closed once

The factory imports the recorder and the consoles only when asked for them, so a run that does
not record never imports SQLAlchemy, and the engine imports neither.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

from wtflow.events import Event, OutputReceived

if TYPE_CHECKING:
    from wtflow.config import Config
    from wtflow.model import Workflow


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


def default_listeners(
    config: Config, *, console: Listener | None = None, workflow: Workflow | None = None
) -> list[Listener]:
    """The reporters the settings ask for, the recorder if the config names a database, then
    `console` (else the config's console) unless a CI log shows the nodes' output itself.

    Raises a UsageError before anything runs when a report path or the database is unusable (a
    local SQLite file: when it cannot be created; the recorder opens it while the run goes on,
    see `Recorder.start`); the reporters come first, so a bad path stops the run before the database is touched. The
    workflow lets the CI logs learn its Secret values, which the events never carry."""
    from wtflow.reports import replaces_console, reporters
    from wtflow.reports.journal import Journal

    reports = reporters(config, os.environ, workflow)
    listeners: list[Listener] = []
    db_url = config.db.resolved_url(config.storage.resolved_state_dir())
    if db_url is not None:
        from wtflow.db.recorder import Recorder  # only runs that record pay for SQLAlchemy

        # With PyFuncs too: the server that forks them was made before the writer thread, so none
        # inherits the module locks of the SQLAlchemy import it runs (executors/forkserver.py).
        listeners.append(Recorder.start(db_url))
    listeners.extend(reports)
    last: list[Listener] = []
    if db_url is not None and config.storage.keep_runs is not None:
        from wtflow.db.retention import Pruner

        # Last of all: it prunes once the recorder has written the run's end, and after the summary.
        last.append(Pruner(db_url, config.storage.keep_runs))
    # First, so the journal, which outlives a SIGKILL and the database, hears each event first.
    listeners.insert(0, Journal())
    if replaces_console(reports):
        return listeners + last  # a CI log shows node output itself
    if console is None:
        from wtflow.consoles import console_for

        console = console_for(config.run.console, color="auto", verbose=False)
    if console is not None:
        listeners.append(console)
    return listeners + last


class Fanout:
    """Sends each event to every listener of a run and closes each exactly once.

    A listener that raises from `handle` (a closed pipe, a bug) is dropped with a problem noted:
    it must not stop the run. It is still closed at the end."""

    def __init__(self, listeners: Sequence[Listener], problems: list[str]) -> None:
        self._all: list[Listener] = []
        self._unclosed: list[Listener] = []
        self._output: list[Listener] = []
        self.problems = problems
        self.extend(listeners)

    def extend(self, listeners: Sequence[Listener]) -> None:
        self._all.extend(listeners)
        self._unclosed.extend(listeners)
        # A listener written before `wants_output` was part of the protocol is sent output.
        self._output.extend(x for x in listeners if getattr(x, "wants_output", True))

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

    def close_all(self) -> None:
        while self.close_next():
            pass
