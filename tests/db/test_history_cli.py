"""`wtflow runs`, `show`, `logs` and `db upgrade`, as a user types them, over a real record."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.db.conftest import History
from tests.helpers import config, wait_for, wf
from wtflow import Command, Engine, Node
from wtflow.db import schema


def record(tmp_path: Path, db_url: str, *nodes: Node, name: str = "wf") -> Engine:
    engine = Engine(wf(*nodes, name=name), config(tmp_path, db__url=db_url))
    engine.run()
    return engine


def start_run(tmp_path: Path, db_url: str, name: str, child: str) -> subprocess.Popen[bytes]:
    """Another process running workflow `name` (root with the one `child`, Python source)."""
    script = tmp_path / "run.py"
    script.write_text(
        "import sys\n"
        "from wtflow import Command, Config, Engine, Node, Workflow\n"
        f"wf = Workflow(name={name!r}, root=Node('root', children=[{child}]))\n"
        f"cfg = Config.load(environ={{}}, overrides={{'db.url': {db_url!r}, 'storage.state_dir': {str(tmp_path)!r}, "
        "'run.console': 'quiet'})\n"
        "sys.exit(Engine(wf, cfg).run())\n"
    )  # fmt: skip
    return subprocess.Popen([sys.executable, str(script)])


@pytest.fixture
def two_runs(tmp_path: Path, db_url: str) -> tuple[Engine, Engine]:
    first = record(tmp_path, db_url, Node("hello", Command("echo hi")), name="greet")
    second = record(
        tmp_path,
        db_url,
        # stderr only once stdout is in its file: the order of arrival is fixed, whatever the load.
        Node(
            "build",
            Command(
                'echo compiling; until grep -q compiling "$WTFLOW_ARTIFACTS/stdout"; '
                "do sleep 0.01; done; echo warning >&2"
            ),
        ),
        Node("test", Command("echo 3 passed; exit 2")),
        Node("deploy", Command("echo deploying")),
        name="ci",
    )
    return first, second


def test_runs_lists_newest_first_with_counts(
    two_runs: tuple[Engine, Engine], db_url: str, history: History
) -> None:
    result = history("runs", db_url=db_url)
    assert result.returncode == 0, result.stderr
    header, newest, oldest = result.stdout.splitlines()
    assert header.split() == ["ID", "WORKFLOW", "STARTED", "DURATION", "STATUS", "NODES"]
    assert newest.startswith(two_runs[1].run_id[:8])
    assert " ci " in newest
    assert "failed" in newest
    assert "1 failed, 1 succeeded, 1 skipped" in newest
    assert oldest.startswith(two_runs[0].run_id[:8])


def test_runs_filters_and_limits(two_runs: tuple[Engine, Engine], db_url: str, history: History) -> None:
    only_ci = history("runs", "--workflow", "ci", "--json", db_url=db_url)
    assert [r["id"] for r in json.loads(only_ci.stdout)] == [two_runs[1].run_id]
    succeeded = history("runs", "--status", "succeeded", "--json", db_url=db_url)
    assert [r["workflow"] for r in json.loads(succeeded.stdout)] == ["greet"]
    assert len(json.loads(history("runs", "-n", "1", "--json", db_url=db_url).stdout)) == 1


def test_show_draws_the_tree_with_exit_codes(
    two_runs: tuple[Engine, Engine], db_url: str, history: History
) -> None:
    result = history("show", two_runs[1].run_id[:6], db_url=db_url)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith(f"run {two_runs[1].run_id}  ci  failed (exit 1)")
    assert str(two_runs[1].run_dir) in lines[2]
    tree = [line.split() for line in lines[4:]]
    assert [t[:2] for t in tree] == [["root", "failed"], ["build", "succeeded"], ["test", "failed"],
                                     ["deploy", "skipped"]]  # fmt: skip
    assert lines[6].startswith("  test ")
    assert "exit 2" in lines[6]


def test_show_json_has_attempts_and_outputs(
    two_runs: tuple[Engine, Engine], db_url: str, history: History
) -> None:
    data = json.loads(history("show", "last", "--json", db_url=db_url).stdout)
    assert data["id"] == two_runs[1].run_id
    test = next(n for n in data["nodes"] if n["name"] == "test")
    assert (test["status"], test["exit_code"], test["executes"]) == ("failed", 2, "echo 3 passed; exit 2")
    [attempt] = test["attempts"]
    assert attempt["outputs"]["stdout"]["size"] == len("3 passed\n")
    assert Path(attempt["outputs"]["stdout"]["path"]).read_text() == "3 passed\n"


def test_logs_by_name_path_and_stream(two_runs: tuple[Engine, Engine], db_url: str, history: History) -> None:
    assert history("logs", "last", "build", "--stdout", db_url=db_url).stdout == "compiling\n"
    assert history("logs", "last", "root/build", "--stderr", db_url=db_url).stdout == "warning\n"
    both = history("logs", two_runs[1].run_id, "build", "--both", db_url=db_url).stdout
    assert both == "compiling\nwarning\n"
    assert history("logs", "last", "build", db_url=db_url).stdout == both  # both streams by default
    everything = history("logs", "last", db_url=db_url).stdout
    assert everything == "==> root/build <==\ncompiling\nwarning\n==> root/test <==\n3 passed\n"
    stdout_only = history("logs", "last", "--stdout", db_url=db_url).stdout
    assert stdout_only == "==> root/build <==\ncompiling\n==> root/test <==\n3 passed\n"


def test_logs_takes_the_node_after_its_options(
    two_runs: tuple[Engine, Engine], db_url: str, history: History
) -> None:
    assert history("logs", "last", "--stderr", "build", db_url=db_url).stdout == "warning\n"
    assert history("logs", "last", "-w", "greet", "hello", db_url=db_url).stdout == "hi\n"
    extra = history("logs", "last", "build", "more", db_url=db_url)
    assert (extra.returncode, extra.stderr.splitlines()[-1]) == (
        2,
        "wtflow: error: unrecognized arguments: more",
    )


def test_logs_last_names_the_run_that_has_the_node_when_the_newest_has_not(
    two_runs: tuple[Engine, Engine], db_url: str, history: History
) -> None:
    result = history("logs", "last", "hello", db_url=db_url)  # the newest run is ci's, hello is greet's
    first = two_runs[0].run_id[:8]
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"wtflow: error: no node 'hello' in this run; nodes are: 'root/build', 'root/test', 'root/deploy'; `last` is the "
        f"newest run of any workflow ({two_runs[1].run_id[:8]}, 'ci'): the newest with that node is {first}, "
        "of 'greet' (wtflow logs last -w greet hello)"
    ]
    # A node no run has, a run given by id, or a workflow given: the plain error.
    for args in (("last", "nope"), (two_runs[1].run_id, "hello"), ("last", "-w", "ci", "hello")):
        assert "newest with that node" not in history("logs", *args, db_url=db_url).stderr


def test_logs_both_interleaves_the_streams_as_they_arrived(
    tmp_path: Path, db_url: str, history: History
) -> None:
    # Each line waits until the one before it is in its artifact file: the order of arrival is
    # the order of writing, however slowly wtflow reads under load.
    code = (
        "import os, pathlib, sys, time\n"
        "folder = pathlib.Path(os.environ['WTFLOW_ARTIFACTS'])\n"
        "def say(stream, text):\n"
        "    print(text, file=stream, flush=True)\n"
        "    name = 'stdout' if stream is sys.stdout else 'stderr'\n"
        "    while text not in (folder / name).read_text(): time.sleep(0.005)\n"
        "for i in range(4):\n"
        "    say(sys.stdout, f'out {i}')\n"
        "    say(sys.stderr, f'err {i}')\n"
    )
    record(tmp_path, db_url, Node("talk", Command([sys.executable, "-c", code])))
    both = history("logs", "last", "talk", "--both", db_url=db_url).stdout
    assert both.splitlines() == [f"{s} {i}" for i in range(4) for s in ("out", "err")]
    assert history("logs", "last", "talk", db_url=db_url).stdout == both
    assert history("logs", "last", "talk", "--stdout", db_url=db_url).stdout == "out 0\nout 1\nout 2\nout 3\n"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("show", "ffffffff"), "no run with id 'ffffffff'; see `wtflow runs`"),
        (("show", "not-an-id!"), "is not a run id"),
        (("logs", "last", "nope"), "no node 'nope' in this run; nodes are: 'root/build', 'root/test'"),
        (("logs", "last", "deploy"), "node 'root/deploy' did not run (skipped); it has no output"),
    ],
)
def test_bad_references_are_one_line_errors(two_runs: tuple[Engine, Engine], db_url: str, args: tuple[str, ...],
                                            message: str, history: History) -> None:  # fmt: skip
    result = history(*args, db_url=db_url)
    assert result.returncode == 2
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.stderr


def test_history_without_any_record_says_so(tmp_path: Path, history: History) -> None:
    url = f"sqlite:///{tmp_path / 'none.db'}"
    assert (history("runs", db_url=url).returncode, history("runs", db_url=url).stdout) == (
        0,
        "no runs recorded yet\n",
    )
    assert json.loads(history("runs", "--json", db_url=url).stdout) == []
    shown = history("show", db_url=url)
    assert shown.returncode == 2
    assert "no runs recorded yet" in shown.stderr
    assert not (tmp_path / "none.db").exists()
    off = history("runs", db_url="")
    assert off.returncode == 2
    assert "recording is off" in off.stderr


def test_logs_follow_streams_a_running_node_from_another_process(
    tmp_path: Path, db_url: str, history: History
) -> None:
    gate = tmp_path / "gate"
    node = tmp_path / "node.py"
    node.write_text(
        "import pathlib, sys, time\n"
        "print('one', flush=True)\n"
        f"while not pathlib.Path({str(gate)!r}).exists(): time.sleep(0.05)\n"
        "print('two')\n"
    )
    runner = start_run(tmp_path, db_url, "live", f"Node('tail', Command([sys.executable, {str(node)!r}]))")
    try:
        deadline = time.monotonic() + 30
        while history("logs", "last", "tail", db_url=db_url).stdout != "one\n":
            assert time.monotonic() < deadline, "the node never started"
            time.sleep(0.1)
        env = {**os.environ, "WTFLOW_DB_URL": db_url}
        follower = subprocess.Popen([sys.executable, "-m", "wtflow", "logs", "last", "tail", "--follow"],
                                    stdout=subprocess.PIPE, env=env)  # fmt: skip
        assert follower.stdout is not None
        with follower.stdout:
            assert follower.stdout.readline() == b"one\n"
            assert follower.poll() is None  # still following: the node has not ended
            gate.touch()
            # On through the same buffer: communicate() with a timeout would read the pipe
            # itself and lose what readline() already buffered.
            out = follower.stdout.read()
        assert out == b"two\n"
        assert follower.wait(timeout=30) == 0
    finally:
        gate.touch()
        assert runner.wait(timeout=30) == 0


def test_db_upgrade_brings_an_empty_database_to_the_newest_schema(tmp_path: Path, history: History) -> None:
    url = f"sqlite:///{tmp_path / 'new.db'}"
    result = history("db", "upgrade", db_url=url)
    assert result.returncode == 0, result.stderr
    assert f"is at schema revision {schema.HEAD} (the newest)" in result.stdout


@pytest.mark.parametrize(
    ("url", "message"),
    [
        (
            "postgresql+psycopg://me:hunter2@127.0.0.1:1/db",
            "database postgresql+psycopg://me:***@127.0.0.1:1/db cannot be used",
        ),
        ("nosuchdb://x/y", "names an unknown kind of database 'nosuchdb'"),
        ("not a url", "database URL 'not a url' is not valid; use e.g. sqlite:///"),
        (
            "postgresql+psycopg://u@host:abc/db",
            "database URL 'postgresql+psycopg://u@host:abc/db' is not valid",
        ),
    ],
)
def test_an_unusable_database_is_a_usage_error_before_anything_runs(
    tmp_path: Path, url: str, message: str, history: History
) -> None:
    (tmp_path / "wtfile.py").write_text(
        "import wtflow\n\n@wtflow.workflow\ndef w():\n"
        "    return wtflow.Workflow(name='w', root=wtflow.Node('r', wtflow.Command('touch ran')))\n"
    )
    result = history("run", db_url=url, cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr == f"wtflow: error: {result.stderr.removeprefix('wtflow: error: ')}"
    assert message in result.stderr
    assert "hunter2" not in result.stderr
    assert len(result.stderr.splitlines()) == 1
    assert not (tmp_path / "ran").exists()


def test_db_upgrade_creates_the_default_database_in_a_new_state_folder(
    tmp_path: Path, history: History
) -> None:
    result = history("db", "upgrade", db_url=None, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / ".wtflow" / "wtflow.db").is_file()


def test_logs_follow_goes_on_through_retries_until_the_node_has_ended(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'w.db'}"
    node = tmp_path / "node.py"
    node.write_text(
        "import pathlib, sys, time\n"
        f"room = pathlib.Path({str(tmp_path)!r})\n"
        "if not (room / 'tried').exists():\n"
        "    (room / 'tried').touch()\n"
        "    print('try 1', flush=True)\n"
        "    sys.exit(3)\n"
        "print('try 2', flush=True)\n"
        "(room / 'second').touch()\n"
        "deadline = time.monotonic() + 30\n"
        "while not (room / 'go').exists() and time.monotonic() < deadline:\n"
        "    time.sleep(0.01)\n"
    )
    flaky = f"Node('flaky', Command([sys.executable, {str(node)!r}]), retries=1, retry_delay=0.1)"
    runner = start_run(tmp_path, url, "retrying", flaky)
    try:
        # --follow starts while attempt 2 runs, after attempt 1 has ended: it shows both.
        wait_for(lambda: (tmp_path / "second").exists(), "the second attempt never started")
        follow = subprocess.Popen(
            [sys.executable, "-m", "wtflow", "logs", "last", "flaky", "--follow"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            env={**os.environ, "WTFLOW_DB_URL": url, "NO_COLOR": "1"},
        )  # fmt: skip
        assert follow.stdout is not None
        with follow.stdout:
            assert follow.stdout.readline() == "try 1\n"
            (tmp_path / "go").touch()  # attempt 2 may end now; --follow ends with it
            rest = follow.stdout.read()
        assert follow.wait(timeout=60) == 0, rest
        assert "try 1\n" + rest == "try 1\n==> attempt 2 <==\ntry 2\n"
    finally:
        (tmp_path / "go").touch()
        assert runner.wait(timeout=30) == 0
