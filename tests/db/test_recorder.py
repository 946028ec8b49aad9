"""The recorder against a real SQLite file and a real PostgreSQL server."""

from __future__ import annotations

import os
import re
import signal
import stat
import subprocess
import sys
import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest
import sqlalchemy as sa
from alembic import command
from sqlalchemy import Table, create_engine, insert, inspect, make_url, select, text

from tests.helpers import config, gone, py, wait_for, wf
from wtflow import Command, Engine, Node
from wtflow.db import recorder, schema
from wtflow.db import tables as t
from wtflow.db.recorder import Recorder
from wtflow.errors import RecorderError


def rows(url: str, table: Table) -> list[SimpleNamespace]:
    """Every row of `table`, columns as attributes (a Core Row's .index() would hide 'index')."""
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return [SimpleNamespace(**row._mapping) for row in conn.execute(select(table))]
    finally:
        engine.dispose()


def migrated(url: str, revision: str) -> None:
    """A database whose schema the migrations built up to `revision` (an older wtflow's, or HEAD)."""
    engine = schema.open_engine(url)
    try:
        with engine.begin() as conn:
            cfg = schema.alembic_config()
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, revision)
    finally:
        engine.dispose()


def written(url: str, table: Table) -> bool:
    """Whether `table` has rows yet; a record the writer thread has not made yet has none."""
    try:
        return bool(rows(url, table))
    except sa.exc.OperationalError:  # no such table: the schema comes with the writer's first batch
        return False


def run_indexes(url: str) -> set[str]:
    engine = create_engine(url)
    try:
        return {str(i["name"]) for i in inspect(engine).get_indexes("runs")}
    finally:
        engine.dispose()


def test_a_mixed_run_is_recorded_node_by_node(db_url: str, tmp_path: Path) -> None:
    counter = tmp_path / "tries"
    flaky = py(f"import pathlib,sys; p=pathlib.Path({str(counter)!r}); n=len(p.read_text()) if p.exists() else 0; "
               "p.write_text('x'*(n+1)); print('try', n+1); sys.exit(0 if n else 3)")  # fmt: skip
    workflow = wf(
        Node("ok", Command("echo hello; echo oops >&2")),
        Node("flaky", Command(flaky), retries=2, retry_delay=0),
        Node("optional", Command("exit 4"), allow_failure=True),
        Node("slow", Command("sleep 30", timeout=0.3), allow_failure=True),
        Node("bad", Command("exit 5")),
        Node("never", Command("echo never")),
    )
    code = Engine(workflow, config(tmp_path, db__url=db_url)).run()
    assert code == 1

    [run] = rows(db_url, t.runs)
    assert (run.workflow, run.status, run.exit_code, run.pid) == ("wf", "failed", 1, os.getpid())
    assert run.ended_at >= run.started_at
    assert Path(run.run_dir).is_dir()
    nodes = {n.name: n for n in rows(db_url, t.nodes)}
    assert {name: (n.status, n.exit_code, n.attempts) for name, n in nodes.items()} == {
        "root": ("failed", None, 0),
        "ok": ("succeeded", 0, 1),
        "flaky": ("succeeded", 0, 2),
        "optional": ("failed", 4, 1),
        "slow": ("timed_out", -15, 1),  # ended by the SIGTERM of its time limit
        "bad": ("failed", 5, 1),
        "never": ("skipped", None, 0),
    }
    assert nodes["ok"].path == "root/ok"
    assert nodes["ok"].parent == nodes["root"].index
    assert (nodes["ok"].kind, nodes["ok"].executes) == ("command", "echo hello; echo oops >&2")
    assert nodes["optional"].allow_failure
    attempts = {(a.node_index, a.n): a for a in rows(db_url, t.attempts)}
    flaky_index = nodes["flaky"].index
    assert (attempts[(flaky_index, 1)].status, attempts[(flaky_index, 1)].exit_code) == ("failed", 3)
    assert attempts[(flaky_index, 2)].status == "succeeded"
    artifacts = {(a.node_index, a.attempt, a.name): a for a in rows(db_url, t.artifacts)}
    ok_out = artifacts[(nodes["ok"].index, 1, "stdout")]
    assert Path(ok_out.path).read_bytes() == b"hello\n"
    assert ok_out.size == 6
    assert artifacts[(nodes["ok"].index, 1, "stderr")].size == 5
    retried = artifacts[(flaky_index, 2, "stdout")]
    assert Path(retried.path).read_bytes() == b"try 2\n"
    assert Path(artifacts[(flaky_index, 1, "stdout")].path).read_bytes() == b"try 1\n"


def test_the_default_record_is_a_private_sqlite_file_in_the_state_folder(tmp_path: Path) -> None:
    cfg = config(tmp_path, db__url=None)
    assert Engine(wf(Node("a", Command("true"))), cfg).run() == 0
    db = tmp_path / "state" / "wtflow.db"
    assert stat.S_IMODE(db.stat().st_mode) == 0o600
    [run] = rows(f"sqlite:///{db}", t.runs)
    assert run.status == "succeeded"
    engine = create_engine(f"sqlite:///{db}")
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    engine.dispose()


def test_a_secret_in_the_url_never_reaches_the_record(postgres_server: str, postgres_db_url: str,
                                                      tmp_path: Path) -> None:  # fmt: skip
    url = postgres_db_url.replace("wtflow@", "wtflow:hunter2@")  # trust auth ignores it
    Engine(wf(Node("a", Command("true"))), config(tmp_path, db__url=url)).run()
    [run] = rows(url, t.runs)
    assert run.config["database.url"].startswith("postgresql+psycopg://wtflow:***@")
    assert "hunter2" not in str(run.config)


def test_an_unreachable_database_stops_the_run_before_anything_runs(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    url = "postgresql+psycopg://me:hunter2@127.0.0.1:1/nothing"
    engine = Engine(wf(Node("a", Command(f"touch {marker}"))), config(tmp_path, db__url=url))
    with pytest.raises(RecorderError) as caught:
        engine.run()
    message = str(caught.value)
    assert "postgresql+psycopg://me:***@127.0.0.1:1/nothing" in message
    assert "hunter2" not in message
    assert "\n" not in message
    assert not marker.exists()


def test_a_sqlite_file_in_a_missing_folder_is_a_clear_error(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/no/such/dir/wtflow.db"
    with pytest.raises(RecorderError, match=r"folder '.*/no/such/dir' does not exist; create it"):
        Recorder.connect(url)


def test_an_old_schema_is_upgraded_in_place_keeping_its_runs(db_url: str) -> None:
    migrated(db_url, "0001")
    engine = schema.open_engine(db_url)
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO runs (id, workflow, status, exit_code, started_at, host, \"user\", pid, "
                          "wtflow_version, config, run_dir) VALUES ('a'||'b', 'old', 'succeeded', 0, "
                          "'2025-01-01 00:00:00', 'h', 'u', 1, '0.0.1', '{}', '/x')"))  # fmt: skip
    engine.dispose()
    assert "ix_runs_started_at" not in run_indexes(db_url)

    Recorder.connect(db_url).close()

    assert "ix_runs_started_at" in run_indexes(db_url)
    assert [r.workflow for r in rows(db_url, t.runs)] == ["old"]


def test_the_newest_migration_is_the_one_the_code_expects() -> None:
    assert schema.head_revision() == schema.HEAD
    assert schema.KNOWN[-1] == schema.HEAD


def test_a_schema_from_a_newer_wtflow_is_refused_not_broken(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'w.db'}"
    Recorder.connect(url).close()
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '0099'"))
    engine.dispose()
    with pytest.raises(
        RecorderError, match="schema revision '0099', newer than this wtflow knows; upgrade wtflow"
    ):
        Recorder.connect(url)


RUNNER = textwrap.dedent("""
    import sys
    from wtflow import Command, Config, Engine, Node, Workflow
    url, state, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    children = [Node(f"n{i}", Command("echo $0 out; echo err >&2")) for i in range(n)]
    wf = Workflow(name=sys.argv[4], root=Node("root", children=children, parallel=True))
    cfg = Config.load(environ={}, overrides={"db.url": url, "storage.state_dir": state, "run.console": "quiet"})
    engine = Engine(wf, cfg)
    code = engine.run()
    sys.exit(code or (9 if engine.problems else 0))
""")


def test_two_runs_recording_at_once_lose_nothing(db_url: str, tmp_path: Path) -> None:
    script = tmp_path / "runner.py"
    script.write_text(RUNNER)
    Recorder.connect(db_url).close()  # both start on a created schema, as after a first run
    procs = [
        subprocess.Popen(
            [sys.executable, str(script), db_url, str(tmp_path / "state"), "150", f"wf{i}"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for i in range(2)
    ]
    for p in procs:
        _out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err.decode()
        assert b"locked" not in err
    runs = rows(db_url, t.runs)
    assert sorted((r.workflow, r.status) for r in runs) == [("wf0", "succeeded"), ("wf1", "succeeded")]
    assert len(rows(db_url, t.nodes)) == 2 * 151
    assert len(rows(db_url, t.attempts)) == 2 * 150
    assert {a.size for a in rows(db_url, t.artifacts) if a.name == "stderr"} == {4}


def test_a_fresh_database_created_by_two_runs_at_once(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    script = tmp_path / "runner.py"
    script.write_text(RUNNER)
    procs = [subprocess.Popen([sys.executable, str(script), url, str(tmp_path / "s"), "5", f"wf{i}"],
                              stderr=subprocess.PIPE) for i in range(3)]  # fmt: skip
    for p in procs:
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err.decode()
    assert len(rows(url, t.runs)) == 3


@pytest.mark.postgres
def test_losing_the_database_mid_run_keeps_the_run_and_its_output(postgres_server: str, postgres_db_url: str,
                                                                  tmp_path: Path) -> None:  # fmt: skip
    dbname = make_url(postgres_db_url).database
    drop = py(f"import psycopg; c=psycopg.connect(host={postgres_server!r}, user='wtflow', dbname='postgres', "
              f"autocommit=True); c.execute('DROP DATABASE \"{dbname}\" WITH (FORCE)')")  # fmt: skip
    workflow = wf(
        Node("before", Command("echo before")),
        Node("drop", Command(drop)),
        Node("after", Command("echo after")),
    )
    engine = Engine(workflow, config(tmp_path, db__url=postgres_db_url))
    code = engine.run()
    assert engine.run_dir is not None
    assert code == 0, (engine.run_dir / "root" / "drop" / "stderr").read_text()
    assert engine.problems
    assert "stopped taking records" in engine.problems[0]
    assert engine.run_dir is not None
    assert (engine.run_dir / "root" / "after" / "stdout").read_bytes() == b"after\n"
    assert str(engine.run_dir) in engine.problems[0]


def test_a_killed_wtflow_leaves_its_output_and_a_crashed_record(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'w.db'}"
    script = tmp_path / "runner.py"
    script.write_text(
        textwrap.dedent(f"""
        from wtflow import Command, Config, Engine, Node, Workflow
        wf = Workflow(name="doomed", root=Node("root", Command("echo started; sleep 60")))
        cfg = Config.load(environ={{}}, overrides={{"db.url": {url!r}, "storage.state_dir": {str(tmp_path)!r},
                                                   "run.console": "raw"}})
        Engine(wf, cfg).run()
    """)
    )
    proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE)
    assert proc.stdout is not None
    assert proc.stdout.readline() == b"started\n"
    wait_for(lambda: written(url, t.attempts), "the recorder to write the running attempt")
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    proc.stdout.close()

    env = {**os.environ, "WTFLOW_DB_URL": url, "NO_COLOR": "1"}
    shown = subprocess.run([sys.executable, "-m", "wtflow", "show", "last"], capture_output=True, text=True,
                           env=env, timeout=60)  # fmt: skip
    assert "doomed  crashed" in shown.stdout.splitlines()[0]
    assert "  crashed" in shown.stdout.splitlines()[-1]  # its node too
    [run] = rows(url, t.runs)
    assert run.status == "running"  # a reader shows it crashed, and never writes

    # A writer (`wtflow run`, `wtflow db upgrade`) marks it in the record.
    subprocess.run([sys.executable, "-m", "wtflow", "db", "upgrade"], env=env, check=True, timeout=60)
    [run] = rows(url, t.runs)
    assert run.status == "crashed"
    [node] = rows(url, t.nodes)
    assert node.status == "crashed"
    [artifact] = [a for a in rows(url, t.artifacts) if a.name == "stdout"]
    assert Path(artifact.path).read_bytes() == b"started\n"
    # the watchdog ends the orphaned `sleep 60` (tests/faults/test_killed.py); wait for that
    [attempt] = rows(url, t.attempts)
    assert attempt.pid is not None
    wait_for(lambda: gone(attempt.pid), "the watchdog to end the node")


def test_a_database_locked_by_another_writer_holds_the_record_up_but_loses_nothing(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'w.db'}"
    Recorder.connect(url).close()
    hold = py(f"import sqlite3, time; c = sqlite3.connect({str(tmp_path / 'w.db')!r}, isolation_level=None); "
              "c.execute('BEGIN EXCLUSIVE'); print('locked', flush=True); time.sleep(1.5); c.execute('COMMIT')")  # fmt: skip
    workflow = wf(
        Node("locker", Command(hold)),
        *(Node(f"n{i}", Command(f"echo {i}")) for i in range(20)),
        parallel=True,
    )
    engine = Engine(workflow, config(tmp_path, db__url=url))
    assert engine.run() == 0
    assert engine.problems == []
    assert [r.status for r in rows(url, t.runs)] == ["succeeded"]
    assert sorted(n.status for n in rows(url, t.nodes)) == ["succeeded"] * 22
    assert len(rows(url, t.attempts)) == 21


def test_runs_of_other_hosts_are_judged_by_their_heartbeat(db_url: str) -> None:
    Recorder.connect(db_url).close()
    now = datetime.now(UTC)
    engine = create_engine(db_url)
    with engine.begin() as conn:
        conn.execute(insert(t.runs), [
            {"id": run_id, "workflow": "w", "status": "running", "exit_code": None,
             "started_at": now - timedelta(hours=1), "ended_at": None, "host": "another-machine", "user": "u",
             "pid": 1, "wtflow_version": "0", "config": {}, "run_dir": "/x", "heartbeat_at": heartbeat}
            for run_id, heartbeat in (("stale", now - timedelta(minutes=6)), ("fresh", now), ("old-wtflow", None))
        ])  # fmt: skip
    engine.dispose()
    Recorder.connect(db_url).close()
    assert {r.id: r.status for r in rows(db_url, t.runs)} == {
        "stale": "crashed",
        "fresh": "running",
        "old-wtflow": "running",  # recorded before heartbeats: nothing to judge by
    }


def test_a_long_node_keeps_its_run_s_heartbeat_going(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(recorder, "HEARTBEAT", 0.2)
    url = f"sqlite:///{tmp_path / 'w.db'}"
    Engine(wf(Node("long", Command("sleep 1"))), config(tmp_path, db__url=url)).run()
    [run] = rows(url, t.runs)
    assert run.heartbeat_at is not None
    assert (run.heartbeat_at - run.started_at).total_seconds() >= 0.5


def _schema_of(url: str) -> dict[str, object]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            insp = sa.inspect(conn)
            return {
                table: (
                    [
                        (c["name"], str(c["type"]), c["nullable"], c.get("default"))
                        for c in insp.get_columns(table)
                    ],
                    insp.get_pk_constraint(table)["constrained_columns"],
                    sorted(
                        (i["name"], tuple(i["column_names"]), bool(i["unique"]))
                        for i in insp.get_indexes(table)
                    ),
                    sorted(
                        (tuple(f["constrained_columns"]), f["referred_table"], tuple(f["referred_columns"]))
                        for f in insp.get_foreign_keys(table)
                    ),
                )
                for table in sorted(insp.get_table_names())
            }
    finally:
        engine.dispose()


def test_a_new_database_is_created_from_the_tables_as_the_migrations_would_build_it(tmp_path: Path) -> None:
    """Regression test for issue 18, item 1: a fresh database no longer replays the migrations
    (a fifth of a second); what create_all builds must be what they build, stamped HEAD."""
    created, made_by_migrations = f"sqlite:///{tmp_path}/created.db", f"sqlite:///{tmp_path}/migrated.db"
    Recorder.connect(created).close()
    migrated(made_by_migrations, "head")
    assert _schema_of(created) == _schema_of(made_by_migrations)
    with sa.create_engine(created).connect() as conn:
        assert schema.current_revision(conn) == schema.HEAD


def test_creating_a_database_does_not_import_alembic(tmp_path: Path) -> None:
    code = (
        "import sys; from wtflow.db import schema; "
        f"schema.connect('sqlite:///{tmp_path}/new.db').dispose(); print('alembic' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out == "False\n"


LOCKER = """\
import pathlib, sqlite3, sys, time
db, marker, said = sys.argv[1], pathlib.Path(sys.argv[2]), pathlib.Path(sys.argv[3])
c = sqlite3.connect(db, isolation_level=None)
c.execute("BEGIN EXCLUSIVE")
print("locked", flush=True)
deadline = time.monotonic() + 20  # a hang guard: without the feature the node never comes
while not marker.exists() and time.monotonic() < deadline:
    time.sleep(0.01)
said.write_text("the node ran first" if marker.exists() else "gave up")
c.execute("COMMIT")
"""


def test_nodes_start_while_the_recorder_opens_the_database(tmp_path: Path) -> None:
    """Regression test for issue 18, item 1: the recorder's connect and schema check are off the
    run's critical path. The database is locked until the node has run: a run that waited for
    the recorder before its first node would wait for the lock, and the locker would give up."""
    db = tmp_path / "w.db"
    url = f"sqlite:///{db}"
    Recorder.connect(url).close()
    marker, said = tmp_path / "ran", tmp_path / "said"
    with subprocess.Popen([sys.executable, "-c", LOCKER, str(db), str(marker), str(said)],
                          stdout=subprocess.PIPE, text=True) as locker:  # fmt: skip
        assert locker.stdout is not None
        assert locker.stdout.readline() == "locked\n"
        engine = Engine(wf(Node("a", Command(f"touch {marker}")), Node("b", Command("echo b"))),
                        config(tmp_path, db__url=url))  # fmt: skip
        assert engine.run() == 0
    assert locker.returncode == 0
    assert said.read_text() == "the node ran first"
    assert engine.problems == []
    # Nothing was lost while the database was out of reach.
    assert [r.status for r in rows(url, t.runs)] == ["succeeded"]
    assert sorted((n.name, n.status) for n in rows(url, t.nodes)) == [
        ("a", "succeeded"), ("b", "succeeded"), ("root", "succeeded")
    ]  # fmt: skip
    assert len(rows(url, t.attempts)) == 2


@pytest.mark.parametrize("spoil", ["newer", "not a database"])
def test_a_sqlite_record_this_wtflow_cannot_write_stops_the_run_before_anything_runs(
    tmp_path: Path, spoil: str
) -> None:
    """The SQLite file is opened beside the first nodes, but a quick look first finds a schema
    from a newer wtflow or a file that is no database: one line, and nothing runs."""
    db = tmp_path / "w.db"
    url = f"sqlite:///{db}"
    if spoil == "newer":
        Recorder.connect(url).close()
        engine = create_engine(url)
        with engine.begin() as conn:
            conn.execute(text("UPDATE alembic_version SET version_num = '0099'"))
        engine.dispose()
        said = "schema revision '0099', newer than this wtflow knows; upgrade wtflow"
    else:
        db.write_bytes(b"these are someone's notes, not a database\n" * 100)
        said = "cannot be used: file is not a database; check WTFLOW_DB_URL"
    marker = tmp_path / "ran"
    with pytest.raises(RecorderError, match=re.escape(said)):
        Engine(wf(Node("a", Command(f"touch {marker}"))), config(tmp_path, db__url=url)).run()
    assert not marker.exists()
