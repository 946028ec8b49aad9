"""The JSON shapes of the record, in one place: `runs --json`, `show --json`, `logs --json`,
and any later view (an HTML report, a web view) that shows the same things.

Times are ISO 8601 in UTC, durations seconds; statuses are the record's words, with
`shown_status` adding `failed (allowed)` where a node was allowed to fail.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

from wtflow.db.read import AttemptInfo, NodeInfo, OutputInfo, RunInfo, RunSummary, output_state


def run_shape(run: RunInfo, counts: dict[str, int] | None = None) -> dict[str, Any]:
    shape: dict[str, Any] = {
        "id": run.id, "workflow": run.workflow, "status": run.status, "exit_code": run.exit_code,
        "started_at": _iso(run.started_at), "ended_at": _iso(run.ended_at),
        "duration": _seconds(run.started_at, run.ended_at), "host": run.host, "user": run.user,
        "wtflow_version": run.wtflow_version, "run_dir": run.run_dir, "config": dict(run.config),
        "resumed_from": run.resumed_from,
        "params": None if run.params is None else dict(run.params),
        "provenance": None if run.provenance is None else dict(run.provenance),
        "output": output_state(run),
    }  # fmt: skip
    if counts is not None:
        shape["nodes"] = dict(counts)
    return shape


def runs_shape(summaries: list[RunSummary]) -> list[dict[str, Any]]:
    return [run_shape(s.run, dict(s.counts)) for s in summaries]


def attempt_shape(attempt: AttemptInfo) -> dict[str, Any]:
    return {
        "n": attempt.n, "status": attempt.status, "exit_code": attempt.exit_code, "pid": attempt.pid,
        "host": attempt.host,
        "started_at": _iso(attempt.started_at), "ended_at": _iso(attempt.ended_at),
        "duration": _seconds(attempt.started_at, attempt.ended_at),
        "outputs": {name: _output(o) for name, o in attempt.outputs.items()},
        "digest": attempt.digest,
    }  # fmt: skip


def _output(o: OutputInfo) -> dict[str, Any]:
    shape: dict[str, Any] = {"path": o.path, "size": o.size}
    if o.kind != "stream":
        shape.update(kind=o.kind, artifact=o.artifact, sha256=o.sha256)
    return shape


class NoResult(Exception):
    """The node returned nothing, or its result file is gone (removed by hand, or by `gc`)."""


def result_value(node: NodeInfo) -> Any:
    """What the node's PyFunc returned (its last attempt's `result.json`, decoded)."""
    found = node.attempts[-1].outputs.get("result") if node.attempts else None
    if found is None:
        raise NoResult(node.path)
    try:
        return json.loads(Path(found.path).read_bytes())
    except (OSError, ValueError):
        raise NoResult(node.path) from None


def node_shape(node: NodeInfo) -> dict[str, Any]:
    return {
        "path": node.path, "name": node.name, "depth": node.depth, "kind": node.kind,
        "executes": node.executes, "allow_failure": node.allow_failure, "status": node.status,
        "shown_status": node.shown_status, "reason": node.reason, "exit_code": node.exit_code,
        "started_at": _iso(node.started_at), "ended_at": _iso(node.ended_at),
        "duration": _seconds(node.started_at, node.ended_at),
        "attempts": [attempt_shape(a) for a in node.attempts], "decision": node.decision,
        **_result(node),
    }  # fmt: skip


def _result(node: NodeInfo) -> dict[str, Any]:
    try:
        return {"result": result_value(node)}
    except NoResult:
        return {}


def show_shape(run: RunInfo, tree: list[NodeInfo]) -> dict[str, Any]:
    return {**run_shape(run), "nodes": [node_shape(n) for n in tree]}


def logs_shape(run: RunInfo, node: NodeInfo, attempt: AttemptInfo) -> dict[str, Any]:
    """Where one attempt's output is, and how its streams alternated (the bytes stay in the files)."""
    order = None if attempt.output_order is None else [list(o) for o in attempt.output_order]
    return {"run": run.id, "node": node.path, **attempt_shape(attempt), "output_order": order}


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _seconds(start: datetime | None, end: datetime | None) -> float | None:
    return round((end - start).total_seconds(), 3) if start and end else None
