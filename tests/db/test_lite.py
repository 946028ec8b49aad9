"""The local SQLite record written with the stdlib's sqlite3 (db/lite.py): the same schema and the
same rows as through SQLAlchemy, and a recorded run that never imports SQLAlchemy (issue 18)."""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
import sys
import textwrap
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace

import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import sqlite
from sqlalchemy.schema import CreateIndex, CreateTable

from tests.db.test_recorder import _schema_of, migrated
from tests.db.test_recorder import rows as table_rows
from tests.helpers import config, py, wait_for, wf
from wtflow import Command, Engine, Node, PyFunc
from wtflow.db import lite, rows, schema, tables
from wtflow.db.journals import journals_under
from wtflow.db.recorder import Recorder
from wtflow.events import Event, NodeFinished
from wtflow.journal import read_journal


def _one_line(sql: str) -> str:
    return re.sub(r"\s+", " ", sql).replace("( ", "(").replace(" )", ")").strip()


def test_its_schema_is_what_the_tables_compile_to_for_sqlite() -> None:
    dialect = sqlite.dialect()
    compiled = []
    for table in tables.metadata.sorted_tables:
        compiled.append(str(CreateTable(table).compile(dialect=dialect)))
        compiled.extend(str(CreateIndex(index).compile(dialect=dialect)) for index in table.indexes)
    assert sorted(map(_one_line, lite.SCHEMA)) == sorted(map(_one_line, compiled))


def test_the_values_it_converts_are_the_tables_json_and_datetime_columns() -> None:
    for table in tables.metadata.sorted_tables:
        assert lite.JSONS[table.name] == {c.name for c in table.c if isinstance(c.type, sa.JSON)}
        assert lite.DATETIMES[table.name] == {
            c.name for c in table.c if isinstance(c.type, tables.UTCDateTime)
        }


def test_a_database_it_creates_is_the_one_sqlalchemy_creates(tmp_path: Path) -> None:
    made = tmp_path / "lite.db"
    record = lite.open_record(f"sqlite:///{made}", made)
    assert record is not None
    record.close()
    reference = f"sqlite:///{tmp_path}/reference.db"
    Recorder.connect(reference).close()
    assert _schema_of(f"sqlite:///{made}") == _schema_of(reference)
    with sa.create_engine(f"sqlite:///{made}").connect() as conn:
        assert schema.current_revision(conn) == schema.HEAD
    # SQLAlchemy's writers take it as theirs: nothing to migrate, so Alembic is never loaded.
    code = f"import sys; from wtflow.db import schema; schema.connect('sqlite:///{made}').dispose(); print('alembic' in sys.modules)"
    assert (
        subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
        == "False\n"
    )


def _rows_of_runs(url: str) -> list[SimpleNamespace]:
    return sorted(table_rows(url, tables.runs), key=lambda r: r.started_at)


def _events_of_a_varied_run(tmp_path: Path) -> list[Event]:
    """A real run's events, from its journal: retries, a failure, a skip with its reason, a
    PyFunc's result, tags, waits, an environment and output of both streams."""
    build = Node("build", Command("echo built; echo warn >&2"), tags={"ci"})
    flaky = Node("flaky", Command(py("import os,sys; p='" + str(tmp_path / "once") + "'; "
                                     "sys.exit(0) if os.path.exists(p) else (open(p,'w'), sys.exit(3))")),
                 retries=1, retry_delay=0)  # fmt: skip
    failing = Node("failing", Command("exit 4"), allow_failure=False)
    skipped = Node("skipped", Command("echo never"))
    value = Node("value", PyFunc(_forty_two), after=[build])
    workflow = wf(
        Node("group", children=[build, flaky, value]),
        Node("bad", children=[failing, skipped]),
        Node("side", Command("true"), env={"X": "1"}),
        parallel=True,
    )
    engine = Engine(workflow, config(tmp_path))
    assert engine.run() == 1
    [journal] = journals_under(tmp_path / "state" / "artifacts")
    events, _ = read_journal(journal)
    assert any(isinstance(e, NodeFinished) and e.reason for e in events)
    return events


def _forty_two() -> int:
    return 42


def _raw(path: Path) -> dict[str, list[tuple[object, ...]]]:
    conn = sqlite3.connect(path)
    try:
        return {t: conn.execute(f'SELECT * FROM "{t}" ORDER BY rowid').fetchall() for t in rows.KEYS}
    finally:
        conn.close()


@pytest.mark.parametrize("batches", [1, 4])
def test_it_writes_the_rows_sqlalchemy_writes(tmp_path: Path, batches: int) -> None:
    events = _events_of_a_varied_run(tmp_path)
    size = -(-len(events) // batches)
    chunks = [events[i : i + size] for i in range(0, len(events), size)]

    made = tmp_path / "lite.db"
    record = lite.open_record(f"sqlite:///{made}", made)
    assert record is not None
    for chunk in chunks:
        record.write(chunk)
    record.close()

    reference = tmp_path / "reference.db"
    engine = schema.connect(f"sqlite:///{reference}")
    for chunk in chunks:
        with engine.begin() as conn:
            rows.write(conn, chunk)
    engine.dispose()

    written = _raw(made)
    assert written == _raw(reference)
    assert len(written["nodes"]) == 9
    assert ("result", "result") in {(a[3], a[6]) for a in written["artifacts"]}  # a replayed result too


def test_a_heartbeat_is_written_as_sqlalchemy_writes_times(tmp_path: Path) -> None:
    made = tmp_path / "lite.db"
    events = _events_of_a_varied_run(tmp_path)
    record = lite.open_record(f"sqlite:///{made}", made)
    assert record is not None
    record.write(events[:1])
    before = datetime.now(UTC)
    record.write([], beat=events[0].run_id)
    record.close()
    [run] = _rows_of_runs(f"sqlite:///{made}")
    assert run.heartbeat_at.tzinfo is UTC
    assert run.heartbeat_at >= before.replace(microsecond=0)


def test_a_reason_is_kept_when_its_batch_holds_nodes_that_have_none(db_url: str, tmp_path: Path) -> None:
    """Regression test: a batch whose first node had not ended and a later one ended with a
    reason (skipped: upstream failed) lost that reason: an executemany takes its columns from
    its first row. The batch here ends just before the root does."""
    engine = Engine(wf(Node("a", Command("exit 1")), Node("b", Command("true"))), config(tmp_path))
    engine.run()
    [journal] = journals_under(tmp_path / "state" / "artifacts")
    events, _ = read_journal(journal)
    root_ends = next(i for i, e in enumerate(events) if isinstance(e, NodeFinished) and e.index == 0)
    alchemy = schema.connect(db_url)
    path = tmp_path / "lite.db"
    record = lite.open_record(f"sqlite:///{path}", path)
    assert record is not None
    for part in (events[:root_ends], events[root_ends:]):
        with alchemy.begin() as conn:
            rows.write(conn, part)
        record.write(part)
    alchemy.dispose()
    record.close()
    for url in (db_url, f"sqlite:///{path}"):
        reasons = {r.name: r.reason for r in table_rows(url, tables.nodes)}
        assert str(reasons["b"]).startswith("upstream failed"), url


RECORDED_RUN = """\
import sys
from wtflow import Command, Config, Engine, Node, Workflow
cfg = Config.load(environ={{}}, overrides={{"db.url": {url!r}, "storage.state_dir": {state!r}, "run.console": "quiet"}})
for _ in range(2):  # a fresh record, then an existing one
    assert Engine(Workflow(name="w", root=Node("n", Command("true"))), cfg).run() == 0
print("sqlalchemy" in sys.modules)
"""


def test_a_recorded_run_never_imports_sqlalchemy(tmp_path: Path) -> None:
    """Regression test for issue 18, item 1: importing SQLAlchemy costs more than a short run."""
    url = f"sqlite:///{tmp_path / 'w.db'}"
    code = RECORDED_RUN.format(url=url, state=str(tmp_path))
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert out.stdout == "False\n"
    assert [r.status for r in _rows_of_runs(url)] == ["succeeded", "succeeded"]


def test_an_older_schema_is_upgraded_by_the_next_run(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'w.db'}"
    migrated(url, "0001")
    assert Engine(wf(Node("a", Command("true"))), config(tmp_path, db__url=url)).run() == 0
    with sa.create_engine(url).connect() as conn:
        assert schema.current_revision(conn) == schema.HEAD
    assert [r.status for r in _rows_of_runs(url)] == ["succeeded"]


def _running(path: Path) -> bool:
    conn = sqlite3.connect(path)
    try:
        return bool(conn.execute("SELECT 1 FROM runs WHERE status = 'running'").fetchall())
    except sqlite3.OperationalError:  # no such table yet
        return False
    finally:
        conn.close()


def test_the_next_run_settles_a_run_whose_wtflow_was_killed(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'w.db'}"
    script = textwrap.dedent(f"""
        from wtflow import Command, Config, Engine, Node, Workflow
        cfg = Config.load(environ={{}}, overrides={{"db.url": {url!r}, "storage.state_dir": {str(tmp_path)!r},
                                                   "run.console": "raw"}})
        Engine(Workflow(name="doomed", root=Node("n", Command("echo started; exec sleep 60"))), cfg).run()
    """)
    with subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE) as proc:
        assert proc.stdout is not None
        assert proc.stdout.readline() == b"started\n"
        wait_for(lambda: _running(tmp_path / "w.db"), "the recorder to write the running run")
        os.kill(proc.pid, 9)
    # The next run's rows go in first, through sqlite3; the dead run is settled after them, so a
    # kill while SQLAlchemy loads for it cannot lose the next run too.
    record = lite.open_record(url, tmp_path / "w.db")
    assert record is not None
    assert record.dead_runs
    record.close()
    assert Engine(wf(Node("a", Command("true"))), config(tmp_path, db__url=url)).run() == 0
    assert [(r.workflow, r.status) for r in _rows_of_runs(url)] == [
        ("doomed", "crashed"),
        ("wf", "succeeded"),
    ]


def test_a_full_database_is_said_so_and_takes_the_next_batch_once_there_is_room(tmp_path: Path) -> None:
    nodes = [Node(f"n{i}", Command("true")) for i in range(60)]
    assert Engine(wf(*nodes, parallel=True), config(tmp_path)).run() == 0
    [journal] = journals_under(tmp_path / "state" / "artifacts")
    events, _ = read_journal(journal)
    path = tmp_path / "full.db"
    record = lite.open_record(f"sqlite:///{path}", path)
    assert record is not None
    conn = record._conn  # the writer's own connection: a size limit of its own stands for a full disk
    conn.execute(f"PRAGMA max_page_count = {conn.execute('PRAGMA page_count').fetchone()[0]}")
    with pytest.raises(sqlite3.OperationalError, match="full"):  # what the run's end then says
        record.write(events)
    conn.execute("PRAGMA max_page_count = 1000000")
    record.write(events)  # nothing of the failed batch was kept, and the next one can begin
    record.close()
    assert len(_raw(path)["nodes"]) == 61
