"""The run to resume, read from the record's read side (db/read.py) as the plan needs it.

Between the engine and the database: the engine knows no SQL, so `Engine(wf).run(resume="last")`
comes here, which opens the record read-only."""

from __future__ import annotations

from pathlib import Path

from wtflow.config import Config
from wtflow.decisions import PreviousNode, PreviousOutput, PreviousRun
from wtflow.errors import UsageError


def previous_run(config: Config, workflow: str, ref: str) -> PreviousRun:
    """The run `ref` (an id, a unique prefix, or `last`: the newest of this workflow) as the
    plan weighs it; a UsageError when there is no record to read it from."""
    from wtflow.db.read import means_newest, open_record

    url = config.db.resolved_url(config.storage.resolved_state_dir())
    if url is None:
        raise UsageError(
            f"resume {ref!r}: recording is switched off, so there is no run to resume; "
            "set WTFLOW_DB_URL (or leave it unset for the default database)"
        )
    with open_record(url) as reader:
        reader.check_schema()
        run = reader.find_run(ref, workflow=workflow if means_newest(ref) else None)
        if run.workflow != workflow:
            raise UsageError(
                f"resume {ref!r}: run {run.id[:8]} is of workflow {run.workflow!r}, not {workflow!r}; "
                f"give a run of {workflow!r} (see `wtflow runs -w {workflow}`)"
            )
        tree = reader.run_tree(run)
    nodes: dict[str, PreviousNode] = {}
    for info in tree:
        last = info.attempts[-1] if info.attempts else None
        nodes[info.path] = PreviousNode(
            status=info.status,
            digest=None if last is None else last.digest,
            ended_at=info.ended_at,
            outputs={}
            if last is None
            else {name: PreviousOutput(Path(o.path), o.kind, o.sha256) for name, o in last.outputs.items()},
            output_order=None if last is None else last.output_order,
        )
    return PreviousRun(run.id, nodes)
