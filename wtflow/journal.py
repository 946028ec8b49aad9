"""The run's journal: its events as JSON lines, `<run folder>/journal.jsonl`, and reading them back.

The journal is written beside the artifacts as the run goes (reports/journal.py), so what a
run did survives a SIGKILLed wtflow and a lost database: the record is settled from it
(db/schema.py) and rebuilt from it (`wtflow db rebuild`). `--events FILE` writes the same
lines (reports/events_log.py); `event_record` is the one encoding of both.

The first line, RunStarted, also says where the run ran: `"origin": {"host", "user", "pid"}`.
Output chunks are not journalled: their bytes are in the artifact files.
"""

from __future__ import annotations

import base64
import dataclasses
import enum
import json
import operator
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from wtflow.events import (
    Event,
    KeptFile,
    NodeFinished,
    NodesAdded,
    NodeSpec,
    NodeStarted,
    NodeStopping,
    OutputReceived,
    RunFinished,
    RunStarted,
)
from wtflow.status import Status

if TYPE_CHECKING:
    from wtflow.reports.output import Masker

JOURNAL = "journal.jsonl"
_TYPES: dict[str, type[Any]] = {
    t.__name__: t for t in (RunStarted, NodesAdded, NodeStarted, NodeStopping, NodeFinished, RunFinished)
}
_TIMES = {"started_at", "ended_at", "at", "retry_at"}
_PATHS = {"run_dir", "stdout_path", "stderr_path"}


_AS_IS = frozenset({str, int, float, bool, type(None)})
# The types every event carries, by exact type: a lookup, before the dataclass and isinstance tests.
_CONVERT: dict[type, Callable[[Any], Any]] = {
    datetime: datetime.isoformat,
    type(Path()): str,
    Status: operator.attrgetter("value"),
}
_FIELDS: dict[type, tuple[str, ...] | None] = {}  # each type met: its dataclass fields, or None


def plain(value: Any) -> Any:
    """A value as JSON can hold it.

    Scalars first, and a dataclass's field names looked up once per class: a RunStarted of a
    5000-node tree is 5000 NodeSpecs, and the journal encodes it on the event loop before the
    first node starts (0.22 s, asking `dataclasses.fields` of every one)."""
    kind = type(value)
    if kind in _AS_IS:
        return value
    convert = _CONVERT.get(kind)
    if convert is not None:
        return convert(value)
    names = _names(kind)
    if names is not None:
        fields = {}
        for name in names:
            field = getattr(value, name)
            kind = type(field)
            if kind in _AS_IS:
                fields[name] = field
            elif kind is tuple and all(type(x) is str for x in field):  # a path, tags
                fields[name] = list(field)
            else:
                fields[name] = plain(field)
        return fields
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, tuple | list):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    return value


def _names(kind: type) -> tuple[str, ...] | None:
    """A dataclass's field names, in order, looked up once per class; None for any other type."""
    if kind not in _FIELDS:
        _FIELDS[kind] = (
            tuple(f.name for f in dataclasses.fields(kind)) if dataclasses.is_dataclass(kind) else None
        )
    return _FIELDS[kind]


def event_record(event: Event, mask: Masker | None = None) -> dict[str, Any]:
    """An event as one JSON object: its fields by name plus `"event"`, its type."""
    record: dict[str, Any] = {"event": type(event).__name__}
    for name in _names(type(event)) or ():
        value = getattr(event, name)
        kind = type(value)
        if kind in _AS_IS:
            record[name] = value
        elif kind is not bytes:
            record[name] = plain(value)
    if isinstance(event, OutputReceived):
        data = mask.data(event.data) if mask else event.data
        try:
            record["data"], record["encoding"] = data.decode(), "utf-8"
        except UnicodeDecodeError:
            record["data"], record["encoding"] = base64.b64encode(data).decode(), "base64"
    return record


# One encoder for every line: json.dumps makes a new one at each call given an option.
_ENCODER = json.JSONEncoder(ensure_ascii=False)


def record_line(record: dict[str, Any]) -> str:
    """A record as one line of JSON, newline included."""
    return _ENCODER.encode(record) + "\n"


def event_line(event: Event, mask: Masker | None = None) -> str:
    return record_line(event_record(event, mask))


def _value(name: str, value: Any) -> Any:
    if value is None:
        return None
    if name in _TIMES:
        return datetime.fromisoformat(value)
    if name in _PATHS:
        return Path(value)
    if name == "status":
        return Status(value)
    if name == "path":
        return tuple(value)
    if name == "nodes":
        return tuple(
            NodeSpec(
                **{
                    **spec,
                    "path": tuple(spec["path"]),
                    "tags": tuple(spec.get("tags", ())),
                    "depends_on": tuple(spec.get("depends_on", ())),
                }
            )
            for spec in value
        )
    if name == "output_order":
        return tuple((stream, size) for stream, size in value)
    if name == "kept":
        return tuple(KeptFile(**{**kept, "path": Path(kept["path"])}) for kept in value)
    return value


def event_from_record(record: dict[str, Any]) -> Event | None:
    """The event a journal line holds; None for a line of a kind this wtflow does not know."""
    kind = _TYPES.get(record.get("event", ""))
    if kind is None:
        return None
    names = {f.name for f in dataclasses.fields(kind)}
    event: Event = kind(**{k: _value(k, v) for k, v in record.items() if k in names})
    return event


def read_records(path: Path) -> Iterator[dict[str, Any]]:
    """The journal's lines as objects. A line cut short (the process was killed while writing
    it) or otherwise unreadable ends the journal: nothing after it can be trusted to follow."""
    with path.open(encoding="utf-8") as f:
        for line in f:
            try:
                record = json.loads(line)
            except ValueError:
                return
            if not isinstance(record, dict):
                return
            yield record


def read_journal(path: Path) -> tuple[list[Event], dict[str, Any]]:
    """The events of a journal, and the origin its RunStarted line names (host, user, pid)."""
    events: list[Event] = []
    origin: dict[str, Any] = {}
    for record in read_records(path):
        try:
            event = event_from_record(record)
        except (TypeError, ValueError, KeyError):
            break
        if event is None:
            continue
        if isinstance(event, RunStarted):
            origin = dict(record.get("origin") or {})
        events.append(event)
    return events, origin
