"""What each node of a run came to, gathered from the events: the reporters' shared view."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from wtflow.events import Event, NodeFinished, NodesAdded, NodeSpec, NodeStarted, RunFinished, RunStarted
from wtflow.status import Status


@dataclass
class Outcome:
    spec: NodeSpec
    status: Status = Status.PENDING
    exit_code: int | None = None
    attempts: int = 0
    started_at: datetime | None = None  # of the first attempt
    ended_at: datetime | None = None  # of the last
    seconds: float = 0.0  # every attempt's time together
    stdout_path: Path | None = None  # of the last attempt
    stderr_path: Path | None = None
    reason: str | None = None  # why it was skipped
    # Attempts that were retried: (attempt, status, exit code, its stderr file).
    retried: list[tuple[int, Status, int | None, Path | None]] = field(default_factory=list)

    @property
    def path(self) -> str:
        return "/".join(self.spec.path)

    @property
    def allowed_failure(self) -> bool:
        return self.spec.allow_failure and self.status.is_failure

    @property
    def label(self) -> str:
        """The status as people read it: 'failed (allowed)', 'failed (exit 2)'."""
        text = str(self.status)
        if self.status is Status.FAILED and self.exit_code is not None:
            text += f" (exit {self.exit_code})"
        if self.allowed_failure:
            text += " (allowed)"
        if self.status is Status.SKIPPED and self.reason:
            text += f": {self.reason}"
        return text


class Outcomes:
    """Feed it every event; it keeps each node's outcome (nodes that execute something)."""

    def __init__(self) -> None:
        self.started: RunStarted | None = None
        self.finished: RunFinished | None = None
        self.nodes: dict[int, Outcome] = {}
        self._failed_before = False

    def feed(self, event: Event) -> None:
        if isinstance(event, RunStarted):
            self.started = event
            self.nodes = {s.index: Outcome(s) for s in event.nodes if s.kind is not None}
        elif isinstance(event, NodesAdded):
            self.nodes.update((s.index, Outcome(s)) for s in event.nodes if s.kind is not None)
        elif isinstance(event, NodeStarted):
            outcome = self.nodes.get(event.index)
            if outcome is not None:
                outcome.started_at = outcome.started_at or event.started_at
                outcome.stdout_path, outcome.stderr_path = event.stdout_path, event.stderr_path
        elif isinstance(event, NodeFinished):
            self._finished(event)
        elif isinstance(event, RunFinished):
            self.finished = event

    def _finished(self, event: NodeFinished) -> None:
        if event.status.is_failure and not event.will_retry:
            self._failed_before = True
        outcome = self.nodes.get(event.index)
        if outcome is None:
            return
        outcome.status, outcome.exit_code, outcome.ended_at = event.status, event.exit_code, event.ended_at
        outcome.attempts = max(outcome.attempts, event.attempt)
        if event.will_retry:
            outcome.retried.append((event.attempt, event.status, event.exit_code, outcome.stderr_path))
        if event.started_at is not None:
            outcome.seconds += (event.ended_at - event.started_at).total_seconds()
        if event.status is Status.SKIPPED:
            # A reason the engine gives wins; else the likeliest one from what came before.
            given = getattr(event, "reason", None)
            outcome.reason = str(given) if given else self._guess_reason()

    def _guess_reason(self) -> str:
        return "an earlier node failed" if self._failed_before else "not selected"

    def ordered(self) -> list[Outcome]:
        return [self.nodes[i] for i in sorted(self.nodes)]
