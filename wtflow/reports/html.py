"""The HTML report of a run: one self-contained file (`--report PATH`, `WTFLOW_REPORT`,
`[report] html`), written when the run ends, however it ends.

It is built from the events the run emitted, in the shape `wtflow show --json` gives, so it
needs no database (a CI job that records nothing still gets its report) and looks the same
as `wtflow report RUN` made later from the record.
"""

from __future__ import annotations

import getpass
import os
import socket
import tempfile
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from wtflow._version import __version__
from wtflow.events import Event, NodeFinished, NodesAdded, NodeSpec, NodeStarted, RunFinished, RunStarted
from wtflow.reports.output import check_writable
from wtflow.status import Status
from wtflow.views.html import report_document, run_now
from wtflow.views.tails import collect_tails

RunDict = dict[str, Any]


def render(run: Mapping[str, Any], *, now: datetime | None = None) -> str:
    """The report of a run (the `show --json` dict) as one HTML document."""
    moment = now or run_now(run, lambda: datetime.now(UTC))
    return report_document(run, moment, collect_tails(run.get("nodes") or ()))


def write_report(run: Mapping[str, Any], path: Path) -> None:
    """Write the report of `run` to `path`, whole or not at all (a reader never sees half)."""
    text = render(run)
    path = path.absolute()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.chmod(tmp, 0o644 & ~_umask())  # mkstemp makes 0600; a report is meant to be shared
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


class HtmlReport:
    """A listener that keeps what the run did and writes its report on `close()`."""

    wants_output = False  # the tails are read from the artifact files at the end

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        check_writable(self.path, what="HTML report", fix="--report (or WTFLOW_REPORT)")
        self._run: RunDict | None = None
        self._nodes: dict[int, dict[str, Any]] = {}

    def handle(self, event: Event) -> None:
        if isinstance(event, RunStarted):
            self._started(event)
        elif isinstance(event, NodesAdded):
            for spec in event.nodes:
                self._add(spec)
        elif isinstance(event, NodeStarted):
            node = self._nodes[event.index]
            outputs = {
                name: {"path": str(p), "size": 0}
                for name, p in (("stdout", event.stdout_path), ("stderr", event.stderr_path))
                if p is not None
            }
            node["attempts"].append(
                {"n": event.attempt, "status": Status.RUNNING.value, "exit_code": None, "pid": event.pid,
                 "started_at": event.started_at.isoformat(), "ended_at": None, "duration": None,
                 "outputs": outputs}
            )  # fmt: skip
            node["status"] = Status.RUNNING.value
            node["started_at"] = node["started_at"] or event.started_at.isoformat()
        elif isinstance(event, NodeFinished):
            self._finished(event)
        elif isinstance(event, RunFinished) and self._run is not None:
            self._run.update(
                status=event.status.value,
                exit_code=event.exit_code,
                ended_at=event.ended_at.isoformat(),
                duration=_seconds(self._run["started_at"], event.ended_at),
            )

    def _started(self, event: RunStarted) -> None:
        self._run = {
            "id": event.run_id, "workflow": event.workflow, "status": Status.RUNNING.value,
            "exit_code": None, "started_at": event.started_at.isoformat(), "ended_at": None,
            "duration": None, "host": socket.gethostname(), "user": _user(),
            "wtflow_version": __version__, "run_dir": str(event.run_dir), "config": event.config,
        }  # fmt: skip
        for spec in event.nodes:
            self._add(spec)

    def _add(self, spec: NodeSpec) -> None:
        self._nodes[spec.index] = {
            "path": "/".join(spec.path), "name": spec.path[-1], "depth": len(spec.path) - 1,
            "kind": spec.kind, "executes": spec.executes, "allow_failure": spec.allow_failure,
            "parallel": spec.parallel, "status": Status.PENDING.value, "exit_code": None,
            "started_at": None, "ended_at": None, "duration": None, "attempts": [],
            "_parent": spec.parent, "_position": spec.position,
            "depends_on": list(spec.depends_on), "dynamic": spec.dynamic,
        }  # fmt: skip

    def _finished(self, event: NodeFinished) -> None:
        node = self._nodes[event.index]
        ended = event.ended_at.isoformat()
        if event.attempt:
            attempt = next((a for a in node["attempts"] if a["n"] == event.attempt), None)
            if attempt is not None:
                attempt.update(
                    status=event.status.value, exit_code=event.exit_code, ended_at=ended,
                    duration=_seconds(attempt["started_at"], event.ended_at),
                )  # fmt: skip
                for name, size in (("stdout", event.stdout_size), ("stderr", event.stderr_size)):
                    if name in attempt["outputs"]:
                        attempt["outputs"][name]["size"] = size
        node["exit_code"] = event.exit_code
        if event.will_retry:
            return
        node.update(status=event.status.value, ended_at=ended)
        if node["started_at"] is not None:
            node["duration"] = _seconds(node["started_at"], event.ended_at)

    def snapshot(self) -> RunDict | None:
        """What the run did so far, as `wtflow show --json` would give it."""
        if self._run is None:
            return None
        children: dict[int | None, list[dict[str, Any]]] = {}
        for node in self._nodes.values():
            children.setdefault(node["_parent"], []).append(node)
        index_of = {id(node): i for i, node in self._nodes.items()}
        ordered: list[dict[str, Any]] = []
        stack = sorted(children.get(None, []), key=lambda n: -n["_position"])
        while stack:
            node = stack.pop()
            ordered.append({k: v for k, v in node.items() if not k.startswith("_")})
            kids = children.get(index_of[id(node)], [])
            stack.extend(sorted(kids, key=lambda n: -n["_position"]))
        return {**self._run, "nodes": ordered}

    def close(self) -> list[str]:
        run = self.snapshot()
        if run is None:  # the run never started (bad settings): nothing to report
            return []
        try:
            write_report(run, self.path)
        except OSError as e:
            return [f"HTML report {str(self.path)!r} could not be written: {e.strerror or e}"]
        return []


def _seconds(start: str | None, end: datetime) -> float | None:
    return round((end - datetime.fromisoformat(start)).total_seconds(), 3) if start else None


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no name for this uid (a container's)
        return str(os.getuid())
