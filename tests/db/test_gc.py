"""`wtflow gc` and `[storage] keep_runs`: old runs' folders and rows removed together, over a real
record (a SQLite file and the real PostgreSQL server) and real run folders."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.db.conftest import History
from tests.db.test_history_cli import start_run
from tests.helpers import config, py, wait_for, wf
from wtflow import Command, Engine, Node
from wtflow.db import retention, tables
from wtflow.db.retention import Policy, RunRow
from wtflow.events import RunStarted


def record(tmp_path: Path, db_url: str, name: str = "ci", code: int = 0, **settings: object) -> Engine:
    engine = Engine(wf(Node("build", Command(f"echo built; exit {code}")), name=name),
                    config(tmp_path, db__url=db_url, **settings))  # fmt: skip
    engine.run()
    return engine


def folder(engine: Engine) -> Path:
    assert engine.run_dir is not None
    return engine.run_dir


def rows(db_url: str) -> dict[str, set[str]]:
    """The run ids each table holds rows of (none before the first run's recorder made them:
    it creates the tables while the run's first nodes start)."""
    found = {}
    engine = sa.create_engine(db_url)
    try:
        with engine.connect() as conn:
            for table in (tables.runs, tables.nodes, tables.attempts, tables.artifacts):
                column = table.c.id if table is tables.runs else table.c.run_id
                made = sa.inspect(conn).has_table(table.name)
                found[table.name] = (
                    set(conn.execute(sa.select(column).distinct()).scalars()) if made else set()
                )
    finally:
        engine.dispose()
    return found


def held(db_url: str, *engines: Engine) -> bool:
    """Every table holds rows of exactly these runs."""
    ids = {e.run_id for e in engines}
    return all(found == ids for found in rows(db_url).values())


def test_gc_never_removes_a_running_run_and_removes_the_rest_with_their_rows(
    tmp_path: Path, db_url: str, history: History
) -> None:
    """Issue 13: gc with a running run present. The running run is the oldest, so --keep 1 would
    select it; it stays, runs on, and completes its record."""
    gate, started = tmp_path / "gate", tmp_path / "started"
    waits = py(f"import pathlib, time\npathlib.Path({str(started)!r}).touch()\n"
               f"while not pathlib.Path({str(gate)!r}).exists(): time.sleep(0.02)")  # fmt: skip
    runner = start_run(tmp_path, db_url, "ci", f"Node('wait', Command({waits!r}))")
    try:
        wait_for(started.exists, "the running run's node to start")  # the record exists by then
        wait_for(lambda: rows(db_url)["runs"], "the running run's row")
        old, new = record(tmp_path, db_url), record(tmp_path, db_url)
        [running] = rows(db_url)["runs"] - {old.run_id, new.run_id}

        dry = history("gc", "--keep", "1", "--dry-run", "--json", db_url=db_url)
        assert dry.returncode == 0, dry.stderr
        shape = json.loads(dry.stdout)
        assert [r["id"] for r in shape["removed"]] == [old.run_id]
        assert shape["kept"] == {"running": 1, "latest": 1}
        assert shape["freed"] == sum(f.stat().st_size for f in folder(old).rglob("*") if f.is_file()) > 0
        assert folder(old).is_dir()
        assert rows(db_url)["runs"] == {old.run_id, new.run_id, running}

        done = history("gc", "--keep", "1", db_url=db_url)
        assert done.returncode == 0, done.stderr
        assert done.stdout.splitlines()[-1].startswith("removed 1 run, freed ")
        assert not folder(old).exists()
        assert folder(new).is_dir()
        assert all(found == {new.run_id, running} for found in rows(db_url).values())
    finally:
        gate.touch()
        assert runner.wait(timeout=60) == 0
    engine = sa.create_engine(db_url)
    with engine.connect() as conn:
        status = conn.execute(sa.select(tables.runs.c.status).where(tables.runs.c.id == running)).scalar()
    engine.dispose()
    assert status == "succeeded"


def test_a_folder_removed_by_hand_is_shown_gone_and_gc_removes_its_rows(
    tmp_path: Path, db_url: str, history: History
) -> None:
    old, new = record(tmp_path, db_url), record(tmp_path, db_url)
    shutil.rmtree(folder(old))

    listed = history("runs", db_url=db_url)
    assert listed.returncode == 0
    assert [line.endswith("; output gone") for line in listed.stdout.splitlines()[1:]] == [False, True]
    assert [r["output"] for r in json.loads(history("runs", "--json", db_url=db_url).stdout)] == [
        "here",
        "gone",
    ]
    shown = history("show", old.run_id[:8], db_url=db_url)
    assert shown.returncode == 0, shown.stderr
    assert f"output  {folder(old)}  (gone: removed by hand; `wtflow gc` clears its record)\n" in shown.stdout

    dry = history("gc", "--dry-run", db_url=db_url)
    assert dry.returncode == 0
    assert "folder already gone" in dry.stdout
    assert held(db_url, old, new)

    done = history("gc", db_url=db_url)  # no policy: only what is already gone goes
    assert done.returncode == 0, done.stderr
    assert "removed 1 run (1 whose folder was already gone), freed 0 B; kept 1 run (1 latest)" in done.stdout
    assert held(db_url, new)
    assert folder(new).is_dir()


def test_a_folder_that_cannot_be_removed_keeps_its_rows_and_gc_exits_1(
    tmp_path: Path, history: History
) -> None:
    url = f"sqlite:///{tmp_path / 'wtflow.db'}"
    stuck, old, new = record(tmp_path, url), record(tmp_path, url), record(tmp_path, url)
    pinned = folder(stuck) / "pinned"
    pinned.touch()
    # Immutable: not even root may unlink it (what a foreign mount or a busy file system gives).
    if subprocess.run(["chattr", "+i", str(pinned)], capture_output=True).returncode != 0:
        pytest.skip("chattr +i does not work here")
    try:
        done = history("gc", "--keep", "1", db_url=url)
    finally:
        subprocess.run(["chattr", "-i", str(pinned)], check=True)
    assert done.returncode == 1
    [line] = done.stderr.splitlines()
    assert line.startswith(f"wtflow: error: run folder {str(folder(stuck))!r} could not be removed (")
    assert line.endswith("); its record is kept")
    assert "removed 1 run, freed " in done.stdout
    assert held(url, stuck, new)
    assert folder(stuck).is_dir()
    assert not folder(old).exists()


def test_keep_runs_prunes_each_workflow_at_the_end_of_each_run(tmp_path: Path, db_url: str) -> None:
    """`[storage] keep_runs`: the run that just ended and the newest before it stay; other
    workflows are not touched by a run of this one."""
    other = record(tmp_path, db_url, name="nightly")
    engines = [record(tmp_path, db_url, code=i % 2, storage__keep_runs=2) for i in range(4)]
    assert held(db_url, other, *engines[2:])
    assert [folder(e).is_dir() for e in engines] == [False, False, True, True]
    assert folder(other).is_dir()
    assert os.readlink(folder(engines[3]).parent / "latest") == folder(engines[3]).name


def test_keep_runs_from_the_environment_prunes_a_cli_run(tmp_path: Path, history: History) -> None:
    (tmp_path / "wtfile.py").write_text(
        "import wtflow\n\n@wtflow.workflow\ndef ci():\n    return wtflow.Node('ci', executable=wtflow.Command('true'))\n"
    )
    url = f"sqlite:///{tmp_path / 'wtflow.db'}"
    runs = tmp_path / ".wtflow" / "artifacts" / "ci"
    for _ in range(3):
        ran = history("run", "ci", "-q", db_url=url, cwd=tmp_path)
        assert ran.returncode == 0, ran.stderr
    done = history("gc", db_url=url, cwd=tmp_path, WTFLOW_KEEP_RUNS="2")  # --keep defaults to it
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1].startswith("removed 1 run, freed ")
    assert len(rows(url)["runs"]) == 2
    ran = history("run", "ci", "-q", db_url=url, cwd=tmp_path, WTFLOW_KEEP_RUNS="1")
    assert ran.returncode == 0
    assert "warning" not in ran.stderr
    assert len(rows(url)["runs"]) == 1
    assert len([p for p in runs.iterdir() if p.name != "latest"]) == 1


def test_a_pruner_that_cannot_reach_the_record_is_a_warning(tmp_path: Path) -> None:
    (tmp_path / "db").mkdir()  # a folder where the database file should be
    pruner = retention.Pruner(f"sqlite:///{tmp_path / 'db'}", 3)
    assert pruner.close() == []  # the run never started: nothing to prune
    pruner.handle(RunStarted("r" * 32, "ci", datetime.now(UTC), tmp_path, (), {}))
    [problem] = pruner.close()
    assert problem.startswith("keep_runs=3: old runs of 'ci' were not removed (")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--keep", "0"), "wtflow: error: --keep='0' is not a whole number >= 1; use e.g. 8\n"),
        (("--older-than", "30x"), "wtflow: error: --older-than='30x' is not a duration; "
                                  "use e.g. 30d, 12h or 90m (units s, m, h, d, w)\n"),
        (("--older-than", "800000d"), "wtflow: error: --older-than='800000d' is more than 1000 years; "
                                      "use a shorter age, e.g. 3650d\n"),
        (("--older-than", "9" * 400 + "w"), f"wtflow: error: --older-than='{'9' * 400}w' is more than "
                                            "1000 years; use a shorter age, e.g. 3650d\n"),
    ],
)  # fmt: skip
def test_bad_gc_arguments_are_one_line_and_exit_2(
    tmp_path: Path, history: History, args: tuple[str, ...], message: str
) -> None:
    url = f"sqlite:///{tmp_path / 'wtflow.db'}"
    done = history("gc", *args, db_url=url)
    assert (done.returncode, done.stderr, done.stdout) == (2, message, "")
    assert not (tmp_path / "wtflow.db").exists()


def test_gc_where_nothing_ran_creates_no_database(tmp_path: Path, history: History) -> None:
    done = history("gc", "--keep", "3", db_url=None, cwd=tmp_path)
    assert (done.returncode, done.stdout) == (0, "nothing to remove\n")
    assert not (tmp_path / ".wtflow").exists()


# -- the choice, without a record ---------------------------------------------------------

NOW = datetime(2026, 12, 1, 12, tzinfo=UTC)
HERE = socket.gethostname()


def run(n: int, workflow: str = "ci", status: str = "succeeded", days: float = 0, host: str = HERE) -> RunRow:
    run_id = f"{n:08x}" + "0" * 24
    return RunRow(run_id, workflow, status, NOW - timedelta(days=days), host, f"/a/{workflow}/T-{run_id[:8]}")


def chosen(
    runs: list[RunRow],
    policy: Policy,
    gone: frozenset[int] = frozenset(),
    latest: frozenset[int] = frozenset(),
) -> set[int]:
    choice = retention.choose(runs, policy, now=NOW, here=HERE, gone=lambda r: int(r.id[:8], 16) in gone,
                              latest=[r.id for r in runs if int(r.id[:8], 16) in latest])  # fmt: skip
    return {int(r.id[:8], 16) for r, _ in choice.removed}


def test_keep_and_older_than_together_remove_only_runs_beyond_both() -> None:
    runs = [run(i, days=i) for i in range(6)]  # run 0 the newest
    assert chosen(runs, Policy(keep=2)) == {2, 3, 4, 5}
    assert chosen(runs, Policy(older_than=timedelta(days=3, hours=1))) == {4, 5}
    assert chosen(runs, Policy(keep=2, older_than=timedelta(days=3, hours=1))) == {4, 5}
    assert chosen(runs, Policy(keep=5, older_than=timedelta(days=1))) == {5}
    assert chosen(runs, Policy()) == set()  # no policy: nothing but what is gone
    assert chosen(runs, Policy(), gone=frozenset({3})) == {3}


def test_what_is_never_removed() -> None:
    runs = [run(0, days=0), run(1, status="running", days=9), run(2, status="failed", days=9),
            run(3, host="ci-7", days=9), run(4, days=9), run(5, days=9), run(6, "nightly", "crashed", days=9)]  # fmt: skip
    everything = Policy(older_than=timedelta(0))
    assert chosen(runs, everything) == {
        2,
        4,
        5,
    }  # 0 newest of ci, 1 running, 3 elsewhere, 6 newest of nightly
    assert chosen(runs, Policy(older_than=timedelta(0), keep_failed=True)) == {4, 5}
    assert chosen(runs, everything, latest=frozenset({5})) == {2, 4}
    assert chosen(runs, everything, gone=frozenset({1, 3, 4})) == {
        2,
        4,
        5,
    }  # gone or not, running and elsewhere stay
    unsafe = RunRow("9" * 32, "ci", "succeeded", NOW - timedelta(days=30), HERE, "/home")
    assert retention.choose([run(0), unsafe], everything, now=NOW, here=HERE, gone=lambda r: False).kept == {
        "latest": 1, "folder not a run folder": 1,
    }  # fmt: skip


def test_a_running_run_takes_no_place_among_the_newest() -> None:
    """A run that ends while a later run of its workflow goes on is not removed by its own keep_runs."""
    runs = [run(0, status="running"), run(1, days=1), run(2, days=2)]
    assert chosen(runs, Policy(keep=1)) == {2}


def test_freed_bytes_count_a_hard_linked_file_only_when_every_link_goes(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    (a / "own").write_bytes(b"x" * 10)
    (a / "shared").write_bytes(b"y" * 100)
    os.link(a / "shared", b / "shared")  # a resumed run reused it
    assert retention._freed([a]) == {a: 10}
    assert retention._freed([a, b]) == {a: 110}


@pytest.mark.parametrize(("raw", "seconds"), [("30d", 30 * 86400), ("12h", 43200), ("1d12h", 129600),
                                               ("90m", 5400), ("2w", 14 * 86400), ("0s", 0), ("1.5h", 5400)])  # fmt: skip
def test_durations(raw: str, seconds: float) -> None:
    assert retention.parse_duration(raw, source="--older-than").total_seconds() == seconds


def test_keep_runs_is_read_from_the_environment_and_the_ini_file(tmp_path: Path) -> None:
    from wtflow import Config

    assert Config.from_env({}).storage.keep_runs is None
    assert Config.from_env({"WTFLOW_KEEP_RUNS": "5"}).storage.keep_runs == 5
    assert Config.from_env({"WTFLOW_KEEP_RUNS": "none"}).storage.keep_runs is None
    ini = tmp_path / "ci.ini"
    ini.write_text("[storage]\nkeep_runs = 20  ; a month of nightlies\n")
    assert Config.from_ini(ini, environ={}).storage.keep_runs == 20
    assert Config.load(environ={}, overrides={"storage.keep_runs": 3}).storage.keep_runs == 3
