"""The read side never writes: `runs`, `show` and `logs` on records the user may only read.

Tests run as root here, where permission bits stop nothing; the reader is then started as
root without the capabilities that bypass them (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH), so a
0555 folder, a 0444 file or another user's 0600 file stop it as they stop any user. (A plain
`setuid` to `nobody` cannot start this interpreter: it lives under /root, mode 0700.)
"""

from __future__ import annotations

import hashlib
import json
import os
import pwd
import shutil
import socket
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import create_engine, insert, make_url, select, text

from tests.db.conftest import History
from tests.db.test_history_cli import record, start_run
from tests.db.test_recorder import migrated
from tests.helpers import config, wait_for, wf
from wtflow import Command, Engine, Node
from wtflow.db import schema
from wtflow.db import tables as t
from wtflow.db.recorder import Recorder

HISTORY = [
    ("runs",),
    ("runs", "--json"),
    ("show", "last"),
    ("show", "last", "--json"),
    ("show", "last", "--failed"),
    ("logs", "last", "test"),
    ("logs", "last", "--failed"),
]


def unprivileged(argv: list[str]) -> list[str]:
    """`argv` run so that permission bits apply to it, as they do to any user."""
    if os.getuid() != 0:
        return argv
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("setpriv (util-linux) is needed to drop root's file-permission override")
    return [setpriv, "--inh-caps=-all", "--bounding-set=-dac_override,-dac_read_search", "--", *argv]


def wtflow(*args: str, db_url: str, as_reader: bool = True, **env: str) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "wtflow", *args]
    return subprocess.run(
        unprivileged(argv) if as_reader else argv, capture_output=True, text=True, timeout=60,
        env={**os.environ, "WTFLOW_DB_URL": db_url, "NO_COLOR": "1", **env},
    )  # fmt: skip


def snapshot(folder: Path) -> dict[str, str]:
    """Every file in the database's folder (the database, its -wal and -shm) and its bytes."""
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def the_runs(tmp_path: Path, url: str) -> tuple[Engine, Engine]:
    first = record(tmp_path, url, Node("hello", Command("echo hi")), name="greet")
    second = record(
        tmp_path, url,
        Node("build", Command("echo compiling")),
        Node("lint", Command("echo 'style: 2 warnings' >&2; exit 1"), allow_failure=True),
        Node("test", Command("echo collected 3; echo 'assert 1 == 2' >&2; exit 2")),
        name="ci",
    )  # fmt: skip
    return first, second


@pytest.fixture
def read_only(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """A record with two runs in a folder made read-only (0555, files 0444) once they ended."""
    folder = tmp_path / "record"
    folder.mkdir()
    url = f"sqlite:///{folder / 'wtflow.db'}"
    the_runs(tmp_path, url)
    for path in folder.iterdir():
        path.chmod(0o444)
    folder.chmod(0o555)
    try:
        yield folder, url
    finally:
        folder.chmod(0o755)


def test_the_reader_cannot_write_where_these_tests_say_it_cannot(read_only: tuple[Path, str]) -> None:
    folder, _url = read_only
    touch = [sys.executable, "-c", f"open({str(folder / 'x')!r}, 'w')"]
    assert subprocess.run(unprivileged(touch), capture_output=True).returncode != 0
    write = [sys.executable, "-c", f"open({str(folder / 'wtflow.db')!r}, 'r+b')"]
    assert subprocess.run(unprivileged(write), capture_output=True).returncode != 0


def test_history_reads_a_folder_it_may_not_write_and_changes_no_byte(read_only: tuple[Path, str]) -> None:
    folder, url = read_only
    before = snapshot(folder)
    assert list(before) == ["wtflow.db"]  # the writer has checkpointed and removed its -wal
    for args in HISTORY:
        result = wtflow(*args, db_url=url)
        assert result.returncode == 0, (args, result.stderr)
    assert wtflow("logs", "last", "test", db_url=url).stdout == "collected 3\nassert 1 == 2\n"
    assert [r["workflow"] for r in json.loads(wtflow("runs", "--json", db_url=url).stdout)] == ["ci", "greet"]
    assert snapshot(folder) == before


def test_history_sees_what_a_live_writer_has_in_its_wal(tmp_path: Path) -> None:
    folder = tmp_path / "record"
    folder.mkdir()
    url = f"sqlite:///{folder / 'wtflow.db'}"
    record(tmp_path, url, Node("hello", Command("echo hi")), name="greet")
    # A writer still at work: its newest run is in the -wal file, not yet in the database file.
    writer = sqlite3.connect(folder / "wtflow.db", isolation_level=None)
    try:
        writer.execute("PRAGMA wal_autocheckpoint=0")
        writer.execute(
            "INSERT INTO runs (id, workflow, status, started_at, host, user, pid, wtflow_version, config, "
            "run_dir) VALUES ('feed', 'ongoing', 'running', '2099-01-01 00:00:00', ?, 'u', ?, '0', '{}', '/x')",
            (socket.gethostname(), os.getpid()),
        )
        assert (folder / "wtflow.db-wal").stat().st_size > 0
        for path in folder.iterdir():
            path.chmod(0o444)
        folder.chmod(0o555)
        before = snapshot(folder)
        result = wtflow("runs", "--json", db_url=url)
        assert result.returncode == 0, result.stderr
        assert [(r["workflow"], r["status"]) for r in json.loads(result.stdout)] == [
            ("ongoing", "running"),
            ("greet", "succeeded"),
        ]
        assert snapshot(folder) == before
    finally:
        folder.chmod(0o755)
        writer.close()


def test_history_reads_a_read_only_mount(tmp_path: Path) -> None:
    folder = tmp_path / "record"
    folder.mkdir()
    url = f"sqlite:///{folder / 'wtflow.db'}"
    the_runs(tmp_path, url)
    before = snapshot(folder)
    unshare = shutil.which("unshare")
    probe = [unshare or "unshare", "-rm", "mount", "--bind", "-o", "ro", str(folder), str(folder)]
    if unshare is None or subprocess.run(probe, capture_output=True).returncode != 0:
        pytest.skip("no mount namespace here (unshare -rm) to make a read-only mount in")
    script = f'mount --bind -o ro {folder} {folder} && exec {sys.executable} -m wtflow "$@"'
    for args in HISTORY:
        result = subprocess.run(
            [unshare, "-rm", "sh", "-c", script, "sh", *args], capture_output=True, text=True, timeout=60,
            env={**os.environ, "WTFLOW_DB_URL": url, "NO_COLOR": "1"},
        )  # fmt: skip
        assert result.returncode == 0, (args, result.stderr)
    assert snapshot(folder) == before


def _nobody() -> tuple[int, int]:
    entry = pwd.getpwnam("nobody")
    return entry.pw_uid, entry.pw_gid


@pytest.mark.parametrize("whose", ["file", "folder"])
def test_a_record_the_user_may_not_read_is_one_line_and_exit_2(tmp_path: Path, whose: str) -> None:
    folder = tmp_path / "theirs"
    folder.mkdir()
    url = f"sqlite:///{folder / 'wtflow.db'}"
    record(tmp_path, url, Node("test", Command("echo hi")))
    if os.getuid() != 0:
        pytest.skip("only root can give a record to another user")
    for path in (
        folder,
        *folder.iterdir(),
    ):  # another user's private record, as `sudo` or a colleague leaves it
        os.chown(path, *_nobody())
    (folder / "wtflow.db").chmod(0o600)
    folder.chmod(0o700 if whose == "folder" else 0o755)
    for args in [*HISTORY, ("db", "upgrade")]:
        result = wtflow(*args, db_url=url)
        assert result.returncode == 2, (args, result.stderr)
        assert result.stderr.startswith("wtflow: error: database sqlite:///"), result.stderr
        assert "Permission denied" in result.stderr
        assert len(result.stderr.splitlines()) == 1, result.stderr


BAD_PLACES = [
    pytest.param("/proc/version", "'/proc/version' is not a SQLite database", id="proc-file"),
    pytest.param("/sys/kernel", "is a folder", id="sys-folder"),
    pytest.param(
        "{tmp}/no/such/folder/wtflow.db", "folder '{tmp}/no/such/folder' does not exist", id="no-folder"
    ),
]


@pytest.mark.parametrize(("where", "message"), BAD_PLACES)
def test_a_database_that_cannot_be_opened_is_one_line_and_exit_2(
    tmp_path: Path, where: str, message: str, history: History
) -> None:
    url = "sqlite:///" + where.format(tmp=tmp_path)
    for args in HISTORY:
        result = history(*args, db_url=url)
        assert result.returncode == 2, (args, result.stderr)
        assert message.format(tmp=tmp_path) in result.stderr
        assert result.stderr.startswith("wtflow: error: ")
        assert len(result.stderr.splitlines()) == 1


@pytest.mark.parametrize(
    ("where", "message"),
    [
        pytest.param("/proc/wtflow.db", "cannot be opened for writing: '/proc' takes no new files", id="proc"),
        pytest.param("/sys/wtflow.db", "cannot be opened for writing", id="sys"),
        pytest.param("/sys/kernel", "cannot be opened for writing: Is a directory", id="sys-folder"),
        pytest.param("{tmp}/no/such/folder/wtflow.db", "folder '{tmp}/no/such/folder' does not exist", id="no-folder"),
        pytest.param("{tmp}/theirs/wtflow.db", "cannot be opened for writing: Permission denied", id="theirs"),
    ],
)  # fmt: skip
def test_run_and_db_upgrade_on_a_database_that_cannot_be_opened(
    tmp_path: Path, where: str, message: str, history: History
) -> None:
    (tmp_path / "theirs").mkdir(mode=0o555)
    (tmp_path / "wtfile.py").write_text(
        "import wtflow\n\n@wtflow.workflow\ndef w():\n"
        "    return wtflow.Workflow(name='w', root=wtflow.Node('r', wtflow.Command('touch ran')))\n"
    )
    url = "sqlite:///" + where.format(tmp=tmp_path)
    for args in (("run",), ("db", "upgrade")):
        argv = ["--state-dir", str(tmp_path / "state"), *args]
        if "theirs" in where:  # permission bits stop only a process without root's override
            result = subprocess.run(unprivileged([sys.executable, "-m", "wtflow", *argv]), capture_output=True,
                                    text=True, timeout=60, cwd=tmp_path, env={**os.environ, "WTFLOW_DB_URL": url})  # fmt: skip
        else:
            result = history(*argv, db_url=url, cwd=tmp_path)
        assert result.returncode == 2, (args, result.stderr)
        assert message.format(tmp=tmp_path) in result.stderr
        assert result.stderr.startswith("wtflow: error: ")
        assert len(result.stderr.splitlines()) == 1
    assert not (tmp_path / "ran").exists()


def test_an_older_schema_is_named_with_the_fix_and_left_as_it_is(tmp_path: Path, history: History) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    migrated(url, "0001")
    before = (tmp_path / "old.db").read_bytes()
    for args in HISTORY:
        result = history(*args, db_url=url)
        assert result.returncode == 2, (args, result.stderr)
        expected = (
            f"has schema revision '0001', older than this wtflow's {schema.HEAD!r}; run `wtflow db upgrade`"
        )
        assert expected in result.stderr
        assert len(result.stderr.splitlines()) == 1
    assert (tmp_path / "old.db").read_bytes() == before
    assert history("db", "upgrade", db_url=url).returncode == 0
    assert history("runs", db_url=url).returncode == 0


def test_a_newer_schema_says_to_upgrade_wtflow(tmp_path: Path, history: History) -> None:
    url = f"sqlite:///{tmp_path / 'new.db'}"
    Recorder.connect(url).close()
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '0099'"))
    engine.dispose()
    result = history("runs", db_url=url)
    assert result.returncode == 2
    assert "has schema revision '0099', newer than this wtflow knows; upgrade wtflow" in result.stderr


def _table_rows(url: str) -> dict[str, list[tuple[object, ...]]]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return {
                table.name: sorted(tuple(map(str, row)) for row in conn.execute(select(table)))
                for table in (t.runs, t.nodes, t.attempts, t.artifacts)
            }
    finally:
        engine.dispose()


def _dead_runs(url: str) -> None:
    """Two runs recorded running whose wtflow is gone: one here (no such pid), one elsewhere (stale)."""
    now = datetime.now(UTC)
    dead_pid = _ended_pid()
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(insert(t.runs), [
            {"id": run_id, "workflow": "gone", "status": "running", "exit_code": None, "started_at": started,
             "ended_at": None, "host": host, "user": "u", "pid": dead_pid, "wtflow_version": "0",
             "config": {}, "run_dir": "/x", "heartbeat_at": now - timedelta(minutes=10)}
            for run_id, host, started in (("dead-here", socket.gethostname(), now - timedelta(hours=2)),
                                          ("dead-there", "another-machine", now - timedelta(hours=3)))
        ])  # fmt: skip
        conn.execute(insert(t.nodes), {
            "run_id": "dead-here", "index": 0, "name": "root", "path": "root", "parent": None, "position": 0,
            "kind": "command", "executes": "sleep 60", "parallel": False, "allow_failure": False,
            "status": "running", "exit_code": None, "attempts": 1, "started_at": now, "ended_at": None,
        })  # fmt: skip
    engine.dispose()


def _ended_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def test_a_dead_run_reads_as_crashed_and_stays_as_recorded(
    tmp_path: Path, db_url: str, history: History
) -> None:
    Recorder.connect(db_url).close()
    _dead_runs(db_url)
    before = _table_rows(db_url)
    runs = json.loads(history("runs", "--json", db_url=db_url).stdout)
    assert {r["id"]: r["status"] for r in runs} == {"dead-here": "crashed", "dead-there": "crashed"}
    crashed = json.loads(history("runs", "-s", "crashed", "--json", db_url=db_url).stdout)
    assert len(crashed) == 2
    assert history("runs", "-s", "running", "--json", db_url=db_url).stdout == "[]\n"
    shown = json.loads(history("show", "last", "-w", "gone", "--json", db_url=db_url).stdout)
    assert shown["status"] == "crashed"
    assert [n["status"] for n in shown["nodes"]] == ["crashed"]
    assert _table_rows(db_url) == before  # nothing written: the writer marks them
    Recorder.connect(db_url).close()
    assert {r[0]: r[2] for r in _table_rows(db_url)["runs"]} == {
        "dead-here": "crashed",
        "dead-there": "crashed",
    }


@pytest.mark.postgres
def test_history_with_a_select_only_role_changes_no_row(postgres_server: str, postgres_db_url: str,
                                                        tmp_path: Path, history: History) -> None:  # fmt: skip
    import psycopg

    the_runs(tmp_path, postgres_db_url)
    _dead_runs(postgres_db_url)
    dbname = make_url(postgres_db_url).database
    role = f"reader_{dbname}"
    with psycopg.connect(host=postgres_server, user="wtflow", dbname=dbname, autocommit=True) as conn:
        conn.execute(f'CREATE ROLE "{role}" LOGIN')
        conn.execute(f'GRANT CONNECT ON DATABASE "{dbname}" TO "{role}"')
        conn.execute(f'GRANT USAGE ON SCHEMA public TO "{role}"')
        conn.execute(f'GRANT SELECT ON ALL TABLES IN SCHEMA public TO "{role}"')
    reader_url = postgres_db_url.replace("://wtflow@", f"://{role}@")
    before = _table_rows(postgres_db_url)
    for args in HISTORY:
        result = history(*args, db_url=reader_url)
        assert result.returncode == 0, (args, result.stderr)
    statuses = {
        r["workflow"]: r["status"] for r in json.loads(history("runs", "--json", db_url=reader_url).stdout)
    }
    assert statuses == {"gone": "crashed", "ci": "failed", "greet": "succeeded"}
    assert _table_rows(postgres_db_url) == before
    # The role may not write, so a writer's open fails, in one line.
    upgrade = history("db", "upgrade", db_url=reader_url)
    assert upgrade.returncode == 2
    assert len(upgrade.stderr.splitlines()) == 1


def test_allowed_failures_read_as_such_in_runs_and_show(
    tmp_path: Path, db_url: str, history: History
) -> None:
    engine = Engine(
        wf(Node("lint", Command("exit 1"), allow_failure=True), Node("build", Command("true")), name="ci"),
        config(tmp_path, db__url=db_url),
    )
    assert engine.run() == 0
    runs = history("runs", db_url=db_url).stdout.splitlines()
    assert "succeeded" in runs[1]
    assert runs[1].endswith("1 failed (allowed), 1 succeeded")
    shown = history("show", "last", db_url=db_url).stdout.splitlines()
    assert shown[0].endswith("ci  succeeded (exit 0)")
    assert shown[5].split()[:3] == ["lint", "failed", "(allowed)"]
    [lint] = [n for n in json.loads(history("show", "--json", db_url=db_url).stdout)["nodes"]
              if n["name"] == "lint"]  # fmt: skip
    assert (lint["status"], lint["shown_status"]) == ("failed", "failed (allowed)")


def test_failed_gives_every_failed_node_s_tail_and_paths(tmp_path: Path, history: History) -> None:
    url = f"sqlite:///{tmp_path / 'w.db'}"
    _greet, ci = the_runs(tmp_path, url)
    assert ci.run_dir is not None
    shown = history("show", "last", "--failed", db_url=url)
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert lines[0].startswith(f"run {ci.run_id}  ci  failed")
    failures = lines[4:]
    assert failures[0] == "FAILED (ALLOWED) root/lint (exit 1)"
    test_at = failures.index("FAILED root/test (exit 2)")
    assert f"  stdout: {ci.run_dir / 'root' / 'test' / 'stdout'}" in failures[test_at:]
    assert f"  stderr: {ci.run_dir / 'root' / 'test' / 'stderr'}" in failures[test_at:]
    assert failures[-2:] == ["    collected 3", "    assert 1 == 2"]
    logs = history("logs", "last", "--failed", "--stderr", db_url=url)
    assert logs.returncode == 0, logs.stderr
    assert logs.stdout.splitlines()[-2:] == [f"  stderr: {ci.run_dir / 'root' / 'test' / 'stderr'}",
                                             "    assert 1 == 2"]  # fmt: skip
    # A node that failed saying so on stderr only: `logs` shows it (it used to show stdout alone).
    assert history("logs", "last", "lint", db_url=url).stdout == "style: 2 warnings\n"
    ok = history("show", _greet.run_id, "--failed", db_url=url)
    assert ok.stdout.splitlines()[-1] == f"no node failed in run {_greet.run_id[:8]} (succeeded)"


def test_last_takes_a_workflow(tmp_path: Path, history: History) -> None:
    url = f"sqlite:///{tmp_path / 'w.db'}"
    greet, _ci = the_runs(tmp_path, url)
    shown = history("show", "last", "-w", "greet", db_url=url)
    assert shown.stdout.startswith(f"run {greet.run_id}  greet  succeeded")
    assert history("logs", "last", "hello", "-w", "greet", db_url=url).stdout == "hi\n"
    missing = history("show", "last", "-w", "nope", db_url=url)
    assert missing.returncode == 2
    assert "no runs of workflow 'nope' recorded" in missing.stderr


def test_logs_of_a_group_names_what_to_type_instead(tmp_path: Path, history: History) -> None:
    url = f"sqlite:///{tmp_path / 'w.db'}"
    checks = Node("checks", children=[Node("lint", Command("true")), Node("tests", Command("true"))])
    record(tmp_path, url, checks, Node("build", Command("true")))
    result = history("logs", "last", "checks", db_url=url)
    assert result.returncode == 2
    assert result.stderr == (
        "wtflow: error: node 'root/checks' is a group: it runs nothing itself and has no output; "
        "name one of its nodes: 'root/checks/lint', 'root/checks/tests'\n"
    )


@pytest.mark.parametrize(
    ("streams", "expected"),
    [((), b"out 1\nerr 1\nout 2\nerr 2\n"), (("--stderr",), b"err 1\nerr 2\n"), (("--stdout",), b"out 1\nout 2\n")],
)  # fmt: skip
def test_logs_follow_honours_the_stream_choice(
    tmp_path: Path, streams: tuple[str, ...], expected: bytes
) -> None:
    url = f"sqlite:///{tmp_path / 'w.db'}"
    gate, said = tmp_path / "gate", tmp_path / "said"
    node = tmp_path / "node.py"
    node.write_text(
        "import pathlib, sys, time\n"
        "print('out 1', flush=True); print('err 1', file=sys.stderr, flush=True)\n"
        f"pathlib.Path({str(said)!r}).touch()\n"
        f"while not pathlib.Path({str(gate)!r}).exists(): time.sleep(0.02)\n"
        "print('out 2', flush=True); print('err 2', file=sys.stderr, flush=True)\n"
    )
    runner = start_run(tmp_path, url, "live", f"Node('talk', Command([sys.executable, {str(node)!r}]))")
    try:
        wait_for(said.exists, "the node never spoke")
        # `last` is the run going on (the newest, running or not), here named with its workflow.
        follower = subprocess.Popen(
            [sys.executable, "-m", "wtflow", "logs", "last", "talk", "-w", "live", "--follow", *streams],
            stdout=subprocess.PIPE, env={**os.environ, "WTFLOW_DB_URL": url},
        )  # fmt: skip
        assert follower.stdout is not None
        first = expected.split(b"\n")[0] + b"\n"
        assert follower.stdout.readline() == first  # following: it has printed what was there
        gate.touch()
        # Read on through the same buffer: communicate() with a timeout would read the pipe
        # itself and lose what readline() already buffered.
        with follower.stdout:
            out = follower.stdout.read()
        follower.wait(timeout=60)
        assert sorted((first + out).splitlines()) == sorted(expected.splitlines())
        if not streams:  # each stream in the order it was written, the two streams together
            lines = (first + out).splitlines()
            assert [x for x in lines if x.startswith(b"out")] == [b"out 1", b"out 2"]
        assert follower.returncode == 0
    finally:
        gate.touch()
        assert runner.wait(timeout=60) == 0


@pytest.mark.parametrize("command", [("runs",), ("show",), ("logs",), ("db",), ("db", "upgrade")])
def test_every_history_command_s_help_has_examples(
    command: tuple[str, ...], capsys: pytest.CaptureFixture[str]
) -> None:
    from wtflow.cli import main

    with pytest.raises(SystemExit) as exited:
        main([*command, "--help"])
    assert exited.value.code == 0
    assert "\nexamples:\n  wtflow " + command[0] in capsys.readouterr().out
