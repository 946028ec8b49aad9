"""`--resume`: what succeeded with the same digest is reused, the rest runs, each with its reason."""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, select
from sqlalchemy.exc import OperationalError

from tests.helpers import config, wait_for
from wtflow import Artifact, Command, Config, Engine, Node, PyFunc, Workflow
from wtflow.db import tables as t
from wtflow.journal import JOURNAL


def log(tmp_path: Path, name: str, extra: str = "") -> Command:
    """A node that notes in `ran` that it ran, and prints its name."""
    return Command(f"echo {name} >> {tmp_path / 'ran'}; echo {name}{extra}")


def ran(tmp_path: Path) -> list[str]:
    path = tmp_path / "ran"
    names = path.read_text().split() if path.exists() else []
    path.unlink(missing_ok=True)
    return sorted(names)


def shout(text: Artifact, out: str) -> None:
    Path(out).write_text(text.text().upper())


def tree(tmp_path: Path, *, build: str = "", b_env: str = "1") -> Workflow:
    build_node = Node("build", log(tmp_path, "build", build))
    return Workflow(name="ci", root=Node("root", children=[
        Node("setup", log(tmp_path, "setup")),
        build_node,
        Node("checks", parallel=True, children=[
            Node("a", log(tmp_path, "a")), Node("b", log(tmp_path, "b"), env={"LEVEL": b_env}),
        ]),
        Node("report", PyFunc(shout, args=(build_node.stdout_artifact, str(tmp_path / "report.txt")))),
    ]))  # fmt: skip


def cfg(tmp_path: Path) -> Config:
    return config(tmp_path, db__url=f"sqlite:///{tmp_path / 'w.db'}")


def test_a_changed_command_re_runs_its_node_and_what_reads_its_output_and_nothing_else(
    tmp_path: Path,
) -> None:
    assert Engine(tree(tmp_path), cfg(tmp_path)).run() == 0
    assert ran(tmp_path) == ["a", "b", "build", "setup"]

    engine = Engine(tree(tmp_path, build=" v2"), cfg(tmp_path))
    assert engine.run(resume="last") == 0
    # setup, a and b reused (a and b only follow build in order); report, which reads build's
    # stdout, ran (a PyFunc: it logs nothing, its file says so).
    assert ran(tmp_path) == ["build"]
    assert (tmp_path / "report.txt").read_text() == "BUILD V2\n"

    again = Engine(tree(tmp_path, build=" v2"), cfg(tmp_path))
    assert again.run(resume="last") == 0
    assert ran(tmp_path) == []  # nothing changed: everything reused


def test_a_reused_node_after_one_that_runs_again_keeps_its_earlier_output(tmp_path: Path) -> None:
    """The node after a running one has its files made while that one runs, unless it is reused:
    its earlier files are linked there instead, and nothing removes them at the end."""

    def chain(version: str) -> Workflow:
        return Workflow(name="ci", root=Node("root", children=[
            Node("build", Command(f"echo build {version}")), Node("test", log(tmp_path, "test")),
        ]))  # fmt: skip

    assert Engine(chain("v1"), cfg(tmp_path)).run() == 0
    engine = Engine(chain("v2"), cfg(tmp_path))
    assert engine.run(resume="last") == 0
    assert ran(tmp_path) == ["test"]  # the first run's; `test` is reused in the second
    assert engine.run_dir is not None
    assert (engine.run_dir / "root" / "test" / "stdout").read_text() == "test\n"
    assert (engine.run_dir / "root" / "build" / "stdout").read_text() == "build v2\n"


def test_a_changed_environment_value_re_runs_only_the_nodes_that_see_it(tmp_path: Path) -> None:
    assert Engine(tree(tmp_path), cfg(tmp_path)).run() == 0
    ran(tmp_path)
    (tmp_path / "report.txt").unlink()
    assert Engine(tree(tmp_path, b_env="2"), cfg(tmp_path)).run(resume="last") == 0
    assert ran(tmp_path) == ["b"]
    assert not (tmp_path / "report.txt").exists()  # report, after b but not reading it, was reused

    def grouped(level: str) -> Workflow:  # a value set on a group is seen by its children
        return Workflow(name="grouped", root=Node("root", env={"LEVEL": level}, children=[
            Node("sees", log(tmp_path, "sees")), Node("own", log(tmp_path, "own"), env={"LEVEL": "mine"})]))  # fmt: skip

    assert Engine(grouped("1"), cfg(tmp_path)).run() == 0
    ran(tmp_path)
    assert Engine(grouped("2"), cfg(tmp_path)).run(resume="last") == 0
    assert ran(tmp_path) == ["sees"]


def test_dry_run_explains_each_decision(tmp_path: Path, capfd: Any) -> None:
    assert Engine(tree(tmp_path), cfg(tmp_path)).run() == 0
    capfd.readouterr()
    assert Engine(tree(tmp_path, build=" v2"), cfg(tmp_path), dry_run=True, resume="last").run() == 0
    out = capfd.readouterr().out
    lines = {
        line.strip().split("  ")[0].lstrip("- "): line.strip().partition("  ")[2]
        for line in out.splitlines()[1:]
        if line.lstrip().startswith("- ")
    }
    assert lines["setup"].startswith("reuse: succeeded in ")
    assert lines["setup"].endswith(", inputs unchanged")
    assert lines["build"] == "run: command changed"
    assert lines["a"].startswith("reuse: succeeded in ")  # after build, reading nothing of it
    assert lines["report"] == "run: the artifacts it reads changed"  # the stdout of build


def _attempts(url: str) -> int:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return len(list(conn.execute(select(t.attempts))))
    except OperationalError:  # not created yet
        return 0
    finally:
        engine.dispose()


KILLED = """
from wtflow import Command, Config, Engine, Node, Workflow
flag = {flag!r}
wf = Workflow(name="doomed", root=Node("root", children=[
    Node("first", Command("echo one; echo err >&2")), Node("second", Command("echo two")),
    Node("third", Command(f"test -f {{flag}} || (echo started; sleep 60); echo three")),
    Node("fourth", Command("echo four"))]))
cfg = Config.load(environ={{}}, overrides={{"db.url": {url!r}, "storage.state_dir": {state!r}, "run.console": "raw"}})
raise SystemExit(Engine(wf, cfg, resume={resume!r}).run())
"""


def test_a_run_killed_mid_way_then_resumed_runs_again_exactly_what_did_not_end(tmp_path: Path) -> None:
    url, state, flag = f"sqlite:///{tmp_path / 'w.db'}", str(tmp_path / "state"), str(tmp_path / "flag")
    script = tmp_path / "run.py"
    script.write_text(textwrap.dedent(KILLED.format(flag=flag, url=url, state=state, resume=None)))
    proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE)
    assert proc.stdout is not None
    while proc.stdout.readline() != b"started\n":
        pass
    journal = next(Path(state).glob(f"artifacts/doomed/*/{JOURNAL}"))
    wait_for(
        lambda: journal.read_text().count('"NodeFinished"') == 2, "the journal to hear first and second end"
    )
    wait_for(lambda: _attempts(url) == 3, "the recorder to write the third attempt")
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    proc.stdout.close()
    # SIGKILL leaves the node's own process group (its sleep) to us: it is ended by its id.
    started = [json.loads(line) for line in journal.read_text().splitlines() if '"NodeStarted"' in line]
    with contextlib.suppress(ProcessLookupError):
        os.killpg(started[-1]["pid"], signal.SIGKILL)
    first_dir = journal.parent.resolve()  # not `latest`, which the next run moves

    Path(flag).touch()
    env = {**os.environ, "WTFLOW_DB_URL": url, "WTFLOW_STATE_DIR": state, "NO_COLOR": "1"}
    wtfile = tmp_path / "wtfile.py"
    wtfile.write_text(textwrap.dedent(f"""
        import wtflow
        from wtflow import Command, Node
        flag = {flag!r}
        @wtflow.workflow("doomed")
        def doomed():
            return Node("root", children=[
                Node("first", Command("echo one; echo err >&2")), Node("second", Command("echo two")),
                Node("third", Command(f"test -f {{flag}} || (echo started; sleep 60); echo three")),
                Node("fourth", Command("echo four"))])
    """))  # fmt: skip
    dry = subprocess.run([sys.executable, "-m", "wtflow", "run", "doomed", "--resume", "--dry-run"],
                         capture_output=True, text=True, env=env, cwd=tmp_path, timeout=60)  # fmt: skip
    assert dry.returncode == 0, dry.stderr
    reasons = [line.strip() for line in dry.stdout.splitlines()[1:] if line.lstrip().startswith("- ")]
    short = first_dir.name.rsplit("-", 1)[1]
    assert reasons[1].startswith(f"- first  reuse: succeeded in {short} at ")
    assert reasons[2].startswith(f"- second  reuse: succeeded in {short} at ")
    assert reasons[3] == "- third  run: crashed last time"
    assert reasons[4] == "- fourth  run: did not run last time"

    as_json = subprocess.run([sys.executable, "-m", "wtflow", "run", "doomed", "--resume", "--dry-run", "--json"],
                             capture_output=True, text=True, env=env, cwd=tmp_path, timeout=60)  # fmt: skip
    planned = {n["path"]: (n["action"], n["reason"]) for n in json.loads(as_json.stdout)["nodes"]}
    assert planned["root/third"] == ("run", "crashed last time")
    assert planned["root/first"][0] == "reuse"

    done = subprocess.run([sys.executable, "-m", "wtflow", "run", "doomed", "--resume", "last"],
                          capture_output=True, text=True, env=env, cwd=tmp_path, timeout=60)  # fmt: skip
    assert done.returncode == 0, done.stderr
    shown = json.loads(subprocess.run([sys.executable, "-m", "wtflow", "show", "last", "--json"],
                                      capture_output=True, text=True, env=env, timeout=60).stdout)  # fmt: skip
    assert shown["resumed_from"].startswith(short)
    decisions = {n["name"]: n["decision"] for n in shown["nodes"]}
    assert decisions["first"].startswith(f"reuse: succeeded in {short}")
    assert decisions["third"] == "run: crashed last time"
    new_dir = Path(shown["run_dir"])
    for name, stream in (("first", "stdout"), ("first", "stderr"), ("second", "stdout")):
        old, new = first_dir / "root" / name / stream, new_dir / "root" / name / stream
        assert new.read_bytes() == old.read_bytes()
        assert new.stat().st_ino == old.stat().st_ino  # linked, not copied
    assert (new_dir / "root" / "third" / "stdout").read_bytes() == b"three\n"
    assert (new_dir / "root" / "fourth" / "stdout").read_bytes() == b"four\n"
    logs = subprocess.run([sys.executable, "-m", "wtflow", "logs", "last", "first", "--stderr"],
                          capture_output=True, text=True, env=env, timeout=60)  # fmt: skip
    assert logs.stdout == "err\n"


def test_diff_lists_the_nodes_that_changed(tmp_path: Path, capfd: Any) -> None:
    from wtflow.cli import main

    first = Engine(tree(tmp_path), cfg(tmp_path))
    assert first.run() == 0
    second = Engine(tree(tmp_path, build=" v2"), cfg(tmp_path))
    assert second.run(resume="last") == 0
    capfd.readouterr()
    argv = [
        "--db-url",
        f"sqlite:///{tmp_path / 'w.db'}",
        "diff",
        first.run_id,
        second.run_id,
        "--threshold",
        "60",
    ]
    assert main([*argv, "--json"]) == 0
    rows = {row["path"]: row["changed"] for row in json.loads(capfd.readouterr().out)}
    # Reused setup, a and b kept their digests; build's changed, and with it that of report, its reader.
    assert rows == {p: ["digest"] for p in ("root/build", "root/report")}
    assert main(argv) == 0
    table = capfd.readouterr().out.splitlines()
    assert table[0].split()[:2] == ["NODE", "CHANGED"]
    assert table[1].split()[:2] == ["root/build", "digest"]


def _shards(out: str, fail: str) -> list[Node]:
    return [Node(f"shard-{n}", Command(f"echo shard-{n} >> {out}; test ! -e {fail}-{n}")) for n in range(2)]


def test_a_pyfunc_that_grew_children_runs_again_so_they_run_too(tmp_path: Path) -> None:
    """Reused, the PyFunc would not run and its failed children would not be there to run again."""
    ranfile, fail = tmp_path / "ran", tmp_path / "fail"

    def grown() -> Workflow:
        return Workflow(name="ci", root=Node("root", children=[
            Node("setup", log(tmp_path, "setup")),
            Node("plan", PyFunc(_shards, args=(str(ranfile), str(fail)))),
        ]))  # fmt: skip

    Path(f"{fail}-1").touch()
    assert Engine(grown(), cfg(tmp_path)).run() == 1
    assert ran(tmp_path) == ["setup", "shard-0", "shard-1"]
    Path(f"{fail}-1").unlink()
    engine = Engine(grown(), cfg(tmp_path))
    assert engine.run(resume="last") == 0
    assert ran(tmp_path) == ["shard-0", "shard-1"]  # setup reused; plan ran again, and its shards
    assert str(engine.decisions()["root/plan"]).startswith("run: it grew children in ")


def test_what_a_node_waits_for_running_again_runs_it_again(tmp_path: Path) -> None:
    flag = tmp_path / "fail-build"

    def crossed() -> Workflow:
        build = Node(
            "build", Command(f"echo build >> {tmp_path / 'ran'}; test ! -e {flag}"), allow_failure=True
        )
        deploy = Node("deploy", log(tmp_path, "deploy"), after=[build])
        return Workflow(name="ci", root=Node("root", parallel=True, children=[deploy, build]))

    flag.touch()
    assert Engine(crossed(), cfg(tmp_path)).run() == 0  # allowed to fail: deploy ran all the same
    assert ran(tmp_path) == ["build", "deploy"]
    flag.unlink()
    assert Engine(crossed(), cfg(tmp_path)).run(resume="last") == 0
    # build failed last time so it runs; deploy, though it succeeded, waits for it: it runs too.
    assert ran(tmp_path) == ["build", "deploy"]


def make_parts(log: str) -> dict[str, int]:
    with Path(log).open("a") as f:
        f.write("make\n")
    Path("out").mkdir(exist_ok=True)
    Path("out/a.txt").write_text("AAAA")
    Path("out/b.txt").write_text("BB")
    return {"parts": 2}


def use_parts(result: Artifact, parts: Artifact, log: str, version: int) -> None:
    with Path(log).open("a") as f:
        f.write("use\n")
    print(
        version,
        result.value,
        [(p.name, p.read_text()) for p in parts.paths],
        result.path.parent == parts.path.parent.parent,
    )


def parts_tree(tmp_path: Path, version: int) -> Workflow:
    work = tmp_path / "work"
    work.mkdir(exist_ok=True)
    log = str(tmp_path / "ran")
    make = Node(
        "make",
        PyFunc(make_parts, args=(log,)),
        cwd=work,
        artifacts=[Artifact("parts", file_path="out/*.txt")],
    )
    use = Node("use", PyFunc(use_parts, args=(make.result_artifact, make.artifact("parts"), log, version)))
    return Workflow(name="parts", root=Node("root", children=[make, use]))


def _kept_rows(url: str, run_id: str) -> list[tuple[Any, ...]]:
    with create_engine(url).connect() as conn:
        rows = conn.execute(
            select(
                t.artifacts.c.name,
                t.artifacts.c.kind,
                t.artifacts.c.size,
                t.artifacts.c.sha256,
                t.artifacts.c.path,
            )
            .where(
                t.artifacts.c.run_id == run_id, t.artifacts.c.node_index == 1, t.artifacts.c.kind != "stream"
            )
            .order_by(t.artifacts.c.name)
        ).all()
    return [tuple(r) for r in rows]


def test_a_reused_nodes_result_and_declared_files_are_read_by_later_nodes_and_recorded(
    tmp_path: Path,
) -> None:
    """The result.json and declared files of a reused node are linked into the new run's folder,
    read by the node after it there (`.value`, `.paths`), and recorded with their SHA-256."""
    url = f"sqlite:///{tmp_path / 'w.db'}"
    first = Engine(parts_tree(tmp_path, 1), cfg(tmp_path))
    assert first.run() == 0
    assert ran(tmp_path) == ["make", "use"]

    wf = parts_tree(tmp_path, 2)
    second = Engine(wf, cfg(tmp_path))
    assert second.run(resume="last") == 0
    assert ran(tmp_path) == ["use"]  # make reused, use's argument changed
    make, use = wf.placed[1].node, wf.placed[2].node
    assert use.stdout_artifact.text() == "2 {'parts': 2} [('a.txt', 'AAAA'), ('b.txt', 'BB')] True\n"
    assert second.run_dir is not None
    assert first.run_dir is not None
    assert make.result_artifact.path == second.run_dir / "root" / "make" / "result.json"
    assert make.artifact("parts").paths == (
        second.run_dir / "root" / "make" / "parts" / "a.txt", second.run_dir / "root" / "make" / "parts" / "b.txt")  # fmt: skip
    old = first.run_dir / "root" / "make" / "parts" / "a.txt"
    assert make.artifact("parts").path.stat().st_ino == old.stat().st_ino  # linked, not copied

    before, after = _kept_rows(url, first.run_id), _kept_rows(url, second.run_id)
    assert [r[:4] for r in after] == [r[:4] for r in before]
    assert [r[:2] for r in after] == [("parts/a.txt", "file"), ("parts/b.txt", "file"), ("result", "result")]
    assert after[0][3] == hashlib.sha256(b"AAAA").hexdigest()
    assert all(str(second.run_dir) in r[4] for r in after)


def test_a_reused_nodes_streams_keep_the_order_they_first_came_in(tmp_path: Path) -> None:
    """Regression test: a reused node was recorded as all its stdout, then all its stderr, so
    `logs --both` (and the CI logs) told its story in another order than the run it came from."""
    url = f"sqlite:///{tmp_path / 'w.db'}"
    # Each stream waits until the other's last bytes are in their file: the order is fixed.
    talk = Command(
        'echo out1; until [ -s "$WTFLOW_ARTIFACTS/stdout" ]; do sleep 0.01; done; echo err1 >&2; '
        'until [ -s "$WTFLOW_ARTIFACTS/stderr" ]; do sleep 0.01; done; echo out2'
    )

    def workflow() -> Workflow:
        return Workflow(name="talk", root=Node("root", children=[Node("talk", talk)]))

    assert Engine(workflow(), cfg(tmp_path)).run() == 0
    resumed = Engine(workflow(), cfg(tmp_path))
    assert resumed.run(resume="last") == 0
    with create_engine(url).connect() as conn:
        orders = conn.execute(
            select(t.runs.c.id, t.attempts.c.output_order)
            .join_from(t.runs, t.attempts, t.runs.c.id == t.attempts.c.run_id)
            .where(t.attempts.c.node_index == 1)
            .order_by(t.runs.c.started_at)
        ).all()
    assert [o for _, o in orders] == [[["stdout", 5], ["stderr", 5], ["stdout", 5]]] * 2
    assert orders[1][0] == resumed.run_id
    both = subprocess.run([sys.executable, "-m", "wtflow", "--db-url", url, "logs", resumed.run_id[:8], "talk", "--both"],
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert both.stdout == "out1\nerr1\nout2\n", both


def test_the_plain_console_says_which_nodes_were_reused_and_from_where(tmp_path: Path) -> None:
    from wtflow.consoles.plain import PlainConsole

    first = Engine(tree(tmp_path), cfg(tmp_path))
    assert first.run() == 0
    out = io.StringIO()
    engine = Engine(tree(tmp_path, build=" v2"), cfg(tmp_path), console=PlainConsole(out))
    assert engine.run(resume="last") == 0
    lines = out.getvalue().splitlines()
    assert not any(line.startswith(("==> root/setup", "==> root/checks/a")) for line in lines)  # nothing ran
    reused = sorted(line for line in lines if "reused" in line)
    assert reused == [
        f"<== root/{name} succeeded, reused from {first.run_id[:8]}"
        for name in ("checks/a", "checks/b", "setup")
    ]
    assert any(line.startswith("<== root/build succeeded in ") for line in lines)  # it ran
