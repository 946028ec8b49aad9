"""--events: JSON lines another process reads while the run goes on; the public event API."""

from __future__ import annotations

import base64
import json
import subprocess
from pathlib import Path

import pytest

import wtflow
from tests.cli.conftest import WTFLOW, Run, WtfileWriter, cli_env
from tests.helpers import Collect, config, py, wf
from tests.reports.waiting import node_event, wait_for_event

WAITER = """
@wtflow.workflow
def w():
    wait = "import pathlib, time\\nwhile not pathlib.Path('go').exists(): time.sleep(0.02)\\nprint('released')"
    return wtflow.Node(name="w", children=[
        wtflow.Node(name="first", executable=wtflow.Command("printf 'caf\\\\303\\\\251 \\\\377\\\\n'")),
        wtflow.Node(name="gate", executable=wtflow.Command([sys.executable, "-c", wait])),
    ])
"""


def test_events_are_readable_while_the_run_goes_on(wtfile: WtfileWriter, tmp_path: Path) -> None:
    wtfile(WAITER)
    events = tmp_path / "events.jsonl"
    proc = subprocess.Popen(
        [*WTFLOW, "run", "--events", str(events)], cwd=tmp_path, env=cli_env(tmp_path),
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    seen: list[dict[str, object]] = []
    # The node waits for `go`, which only exists once its NodeStarted line has been read here.
    started = wait_for_event(events, node_event("NodeStarted", "gate"), seen=seen)
    assert proc.poll() is None
    (tmp_path / "go").touch()
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err

    records = [json.loads(line) for line in events.read_text().splitlines()]
    kinds = [r["event"] for r in records]
    assert kinds[0] == "RunStarted"
    assert kinds[-1] == "RunFinished"
    assert started["attempt"] == 1
    assert started["stdout_path"].endswith("/w/gate/stdout")
    gate = [r["event"] for r in records if r.get("path") == ["w", "gate"]]
    assert gate[0] == "NodeStarted"
    assert gate[-1] == "NodeFinished"
    assert set(gate[1:-1]) == {"OutputReceived"}
    out = [r for r in records if r["event"] == "OutputReceived"]
    first = b"".join(
        base64.b64decode(r["data"]) if r["encoding"] == "base64" else r["data"].encode()
        for r in out
        if r["path"] == ["w", "first"]
    )
    assert first == b"caf\xc3\xa9 \xff\n"  # not UTF-8: carried as base64
    assert {r["encoding"] for r in out if r["path"] == ["w", "first"]} == {"base64"}
    assert "".join(r["data"] for r in out if r["path"] == ["w", "gate"]) == "released\n"
    assert records[-1]["status"] == "succeeded"
    assert records[-1]["exit_code"] == 0


def test_the_event_types_and_listener_are_public(tmp_path: Path) -> None:
    seen = Collect()
    listener: wtflow.Listener = seen
    code = wtflow.Engine(wf(wtflow.Node(name="a", executable=wtflow.Command(py("print(1)")))),
                         config(tmp_path), listeners=[listener]).run()  # fmt: skip
    assert code == 0
    kinds = [type(e) for e in seen.events]
    # The output may come in several chunks (an unbuffered child writes "1" and "\n" apart).
    kinds = [k for i, k in enumerate(kinds) if not (k is wtflow.OutputReceived and kinds[i - 1] is k)]
    assert kinds == [
        wtflow.RunStarted, wtflow.NodeStarted, wtflow.OutputReceived, wtflow.NodeFinished,
        wtflow.NodeFinished, wtflow.RunFinished,
    ]  # fmt: skip


class Breaks:
    wants_output = False

    def __init__(self) -> None:
        self.calls = 0

    def handle(self, event: wtflow.Event) -> None:
        self.calls += 1
        if isinstance(event, wtflow.NodeStarted):
            raise RuntimeError("listener bug")

    def close(self) -> list[str]:
        return []


def test_a_listener_that_raises_is_dropped_with_a_warning(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    broken, after = Breaks(), Collect()
    nodes = [wtflow.Node(name=n, executable=wtflow.Command(py("print(1)"))) for n in "ab"]
    code = wtflow.Engine(wf(*nodes), config(tmp_path), listeners=[broken, after]).run()
    assert code == 0
    assert broken.calls == 2  # RunStarted, then the NodeStarted that raised; nothing after
    assert isinstance(after.events[-1], wtflow.RunFinished)
    assert "wtflow: warning: Breaks stopped: listener bug\n" in capfd.readouterr().err


TREE = """
@wtflow.workflow
def t():
    return wtflow.Node(name="t", children=[
        wtflow.Node(name="ok", executable=wtflow.Command("echo ok")),
        wtflow.Node(name="tolerated", executable=wtflow.Command("exit 3"), allow_failure=True),
        wtflow.Node(name="bad", executable=wtflow.Command("echo no >&2; exit 2")),
        wtflow.Node(name="never", executable=wtflow.Command("echo never")),
    ])
"""


def test_exit_code_and_record_do_not_depend_on_the_ci_mode(
    wtflow: Run, wtfile: WtfileWriter, tmp_path: Path
) -> None:
    wtfile(TREE)

    def record(ci: str) -> tuple[int, list[tuple[str, str, object]]]:
        env = cli_env(tmp_path, WTFLOW_DB_URL=f"sqlite:///{tmp_path / ci}.db")
        code = wtflow("run", "--ci", ci, env=env).code
        shown = json.loads(wtflow("show", "--json", env=env).out)
        return code, [(n["path"], n["status"], n["exit_code"]) for n in shown["nodes"]]

    plain = record("none")
    assert plain[0] == 1
    assert record("github") == plain
    assert record("gitlab") == plain


def test_reporters_leave_no_thread_or_open_file_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os
    import threading

    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(tmp_path / "summary.md"))
    fds_before = set(os.listdir("/proc/self/fd"))
    cfg = config(tmp_path, report__events=tmp_path / "e.jsonl", report__ci="github",
                 report__junit_xml=tmp_path / "j.xml")  # fmt: skip
    node = wtflow.Node(name="a", executable=wtflow.Command(py("print(1)")))
    assert wtflow.Engine(wf(node), cfg).run() == 0
    assert not [t.name for t in threading.enumerate() if t.name in ("EventsLog", "GitHubLog")]
    assert set(os.listdir("/proc/self/fd")) <= fds_before
    assert (tmp_path / "j.xml").exists()
    assert json.loads((tmp_path / "e.jsonl").read_text().splitlines()[-1])["event"] == "RunFinished"
    assert (tmp_path / "summary.md").read_text().startswith("### wtflow: `wf` succeeded\n")
