"""The journal beside each run's artifacts: written as the run goes, settling a SIGKILLed run,
rebuilding a lost database."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, select, update
from sqlalchemy.exc import OperationalError

from tests.helpers import config, py, wait_for, wf
from wtflow import Command, Engine, Node, PyFunc, Workflow
from wtflow.db import tables as t
from wtflow.events import NodeFinished
from wtflow.journal import JOURNAL, read_journal


def cli(*args: str, url: str, state: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "WTFLOW_DB_URL": url, "WTFLOW_STATE_DIR": str(state), "NO_COLOR": "1"}
    return subprocess.run([sys.executable, "-m", "wtflow", *args], capture_output=True, text=True,
                          env=env, timeout=60)  # fmt: skip


def test_each_run_journals_its_events_beside_its_artifacts(tmp_path: Path) -> None:
    engine = Engine(wf(Node("a", Command("echo one")), Node("b", Command("exit 3"))), config(tmp_path))
    assert engine.run() == 1
    assert engine.run_dir is not None
    events, origin = read_journal(engine.run_dir / JOURNAL)
    kinds = [type(e).__name__ for e in events]
    assert kinds[0] == "RunStarted"
    assert kinds[-1] == "RunFinished"
    assert "OutputReceived" not in kinds  # the bytes are in the artifact files
    finished = {e.path[-1]: e.status.value for e in events if isinstance(e, NodeFinished)}
    assert finished == {"a": "succeeded", "b": "failed", "root": "failed"}
    assert origin["pid"] == os.getpid()


def _attempts(url: str) -> list[Any]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return list(conn.execute(select(t.attempts)))
    except OperationalError:  # not created yet
        return []
    finally:
        engine.dispose()


def _killed_run(tmp_path: Path, url: str) -> None:
    """A run SIGKILLed while its third node runs; the first two ended."""
    script = tmp_path / "runner.py"
    script.write_text(
        textwrap.dedent(f"""
        from wtflow import Command, Config, Engine, Node, Workflow
        wf = Workflow(name="doomed", root=Node("root", children=[
            Node("first", Command("echo one")), Node("second", Command("exit 4"), allow_failure=True),
            Node("third", Command("echo started; sleep 60")), Node("fourth", Command("echo four"))]))
        cfg = Config.load(environ={{}}, overrides={{"db.url": {url!r}, "storage.state_dir": {str(tmp_path)!r},
                                                   "run.console": "raw"}})
        Engine(wf, cfg).run()
    """)
    )
    proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE)
    assert proc.stdout is not None
    while proc.stdout.readline() != b"started\n":
        pass
    journal = next(tmp_path.glob(f"artifacts/doomed/*/{JOURNAL}"))
    wait_for(lambda: '"NodeStarted"' in journal.read_text().splitlines()[-1], "the journal to hear of third")
    wait_for(lambda: len(_attempts(url)) == 3, "the recorder to write the third attempt")
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    proc.stdout.close()


def test_a_killed_run_is_settled_from_its_journal(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'w.db'}"
    _killed_run(tmp_path, url)
    # As if the recorder had not committed the end of `first` before the SIGKILL.
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(
            update(t.nodes).where(t.nodes.c.name == "first").values(status="running", exit_code=None)
        )
    engine.dispose()

    assert cli("db", "upgrade", url=url, state=tmp_path).returncode == 0
    shown = json.loads(cli("show", "last", "--json", url=url, state=tmp_path).stdout)
    assert shown["status"] == "crashed"
    statuses = {n["path"].split("/")[-1]: (n["status"], n["exit_code"]) for n in shown["nodes"]}
    assert statuses == {
        "root": ("pending", None),  # a group ends with its children, which never ended
        "first": ("succeeded", 0),
        "second": ("failed", 4),
        "third": ("crashed", None),
        "fourth": ("pending", None),
    }


def _without_ids(shape: Any) -> Any:
    if isinstance(shape, dict):
        return {k: _without_ids(v) for k, v in shape.items() if k not in ("heartbeat_at",)}
    if isinstance(shape, list):
        return [_without_ids(v) for v in shape]
    return shape


def test_db_rebuild_after_deleting_the_database_gives_the_same_history(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'w.db'}"
    cfg = config(tmp_path, db__url=url)
    flaky = tmp_path / "tries"
    retried = py(
        f"import pathlib,sys; p=pathlib.Path({str(flaky)!r}); n=p.exists(); p.touch(); sys.exit(0 if n else 3)"
    )
    Engine(wf(Node("hello", Command("echo hi")), name="greet"), cfg).run()
    Engine(wf(Node("build", Command("echo compiling")), Node("flaky", Command(retried), retries=1, retry_delay=0),
              Node("test", Command("echo 'assert 1 == 2' >&2; exit 2")), Node("never", Command("true")),
              name="ci"), cfg).run()  # fmt: skip
    state = tmp_path / "state"
    before = {ref: cli("show", "-w", ref, "--json", url=url, state=state).stdout for ref in ("greet", "ci")}
    runs_before = cli("runs", "--json", url=url, state=state).stdout
    logs_before = cli("logs", "-w", "ci", "last", "flaky", url=url, state=state).stdout

    for suffix in ("", "-wal", "-shm"):
        Path(f"{tmp_path / 'w.db'}{suffix}").unlink(missing_ok=True)
    rebuilt = cli("db", "rebuild", url=url, state=state)
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert "2 runs recorded" in rebuilt.stdout

    for ref, shape in before.items():
        after = cli("show", "-w", ref, "--json", url=url, state=state).stdout
        assert _without_ids(json.loads(after)) == _without_ids(json.loads(shape))
    assert _without_ids(json.loads(cli("runs", "--json", url=url, state=state).stdout)) == _without_ids(
        json.loads(runs_before)
    )
    assert cli("logs", "-w", "ci", "last", "flaky", url=url, state=state).stdout == logs_before
    again = cli("db", "rebuild", url=url, state=state)
    assert "0 runs recorded" in again.stdout
    assert "2 held already" in again.stdout


def test_a_journal_gives_back_each_nodes_tags(tmp_path: Path) -> None:
    """The record rebuilt from a journal (`wtflow db rebuild`) keeps the tags, as tuples again."""
    from wtflow.events import RunStarted

    tree = wf(Node(name="slow", tags={"slow", "db"}, children=[Node(name="a", executable=Command("true"))]))
    engine = Engine(tree, config(tmp_path))
    assert engine.run() == 0
    assert engine.run_dir is not None
    events, _ = read_journal(engine.run_dir / JOURNAL)
    [started] = [e for e in events if isinstance(e, RunStarted)]
    assert [spec.tags for spec in started.nodes] == [(), ("db", "slow"), ("db", "slow")]


def _grow() -> list[Node]:
    return [Node("shard", Command("echo shard")), Node("shard", Command("echo shard two"))]


def test_db_rebuild_keeps_dependencies_and_dynamic_children(tmp_path: Path) -> None:
    """NodesAdded and each node's dependencies are journalled: a rebuilt record shows them as the first did."""
    url = f"sqlite:///{tmp_path / 'w.db'}"
    build = Node("build", Command("echo built"))
    deploy = Node("deploy", Command("echo deployed"), after=[build])
    grower = Node("plan", PyFunc(func=_grow))
    tree = Workflow(name="ci", root=Node("ci", parallel=True, children=[deploy, build, grower]))
    assert Engine(tree, config(tmp_path, db__url=url)).run() == 0
    state = tmp_path / "state"
    before = json.loads(cli("show", "--json", url=url, state=state).stdout)
    nodes = {n["path"]: n for n in before["nodes"]}
    assert nodes["ci/deploy"]["depends_on"] == ["ci/build"]
    assert (nodes["ci/plan/shard-2"]["dynamic"], nodes["ci/plan/shard-2"]["parent"]) == (True, "ci/plan")
    for suffix in ("", "-wal", "-shm"):
        Path(f"{tmp_path / 'w.db'}{suffix}").unlink(missing_ok=True)
    assert cli("db", "rebuild", url=url, state=state).returncode == 0
    after = json.loads(cli("show", "--json", url=url, state=state).stdout)
    assert _without_ids(after) == _without_ids(before)
