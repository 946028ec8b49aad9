"""The end-of-run summary and the plain console's closing line, after real runs."""

from __future__ import annotations

import io
from pathlib import Path

from tests.helpers import config, wf
from wtflow import Command, Engine, Node
from wtflow.consoles import PlainConsole, RunReport


def _run(tmp_path: Path, *children: Node) -> tuple[int, RunReport, str]:
    report, out = RunReport(), io.StringIO()
    code = Engine(wf(*children), config(tmp_path), listeners=[report], console=PlainConsole(out)).run()
    return code, report, out.getvalue()


def test_the_log_path_names_the_file_whose_tail_is_shown(tmp_path: Path) -> None:
    """Regression: the path was always stderr's, even when the lines shown came from stdout."""
    code, report, _ = _run(
        tmp_path,
        Node(name="tests", executable=Command("echo '3 tests failed'; exit 1")),
    )
    assert code == 1
    text = report.summary(code, 1.0, color=False)
    head, tail = text.splitlines()[:2]
    assert head.startswith("FAILED root/tests (exit 1); log: "), text
    assert head.endswith("/root/tests/stdout"), text
    assert tail == "    3 tests failed"


def test_the_log_path_is_stderr_when_stderr_has_the_lines(tmp_path: Path) -> None:
    code, report, _ = _run(
        tmp_path,
        Node(name="tests", executable=Command("echo progress; echo 'boom' >&2; exit 1")),
    )
    head, tail = report.summary(code, 1.0, color=False).splitlines()[:2]
    assert head.endswith("/root/tests/stderr")
    assert tail == "    boom"


def test_allowed_failures_are_counted_as_such_and_never_as_failures(tmp_path: Path) -> None:
    code, report, shown = _run(
        tmp_path,
        Node(name="lint", executable=Command("exit 3"), allow_failure=True),
        Node(
            name="optional",
            allow_failure=True,
            children=[
                Node(name="docs", executable=Command("echo 'no sphinx' >&2; exit 1")),
            ],
        ),
        Node(name="build", executable=Command("true")),
    )
    assert code == 0
    text = report.summary(code, 1.0, color=False)
    assert "FAILED (allowed) root/lint (exit 3); log: " in text
    assert "FAILED (allowed) root/optional/docs (exit 1); log: " in text
    assert "wtflow: wf succeeded in 1.0s: 1 succeeded, 2 failed (allowed); output in " in text
    assert "<== root/lint failed (allowed) (exit 3) in " in shown
    assert "<== root/optional/docs failed (allowed) (exit 1) in " in shown
    assert shown.splitlines()[-1].endswith(" succeeded (1 succeeded, 2 failed (allowed))"), shown


def test_the_summary_says_why_nodes_were_skipped_naming_the_outermost(tmp_path: Path) -> None:
    code, report, _ = _run(
        tmp_path,
        Node(name="build", executable=Command("exit 1")),
        Node(name="deploy", children=[Node(name="push", executable=Command("true"))]),
        *(Node(name=f"docs-{n}", executable=Command("true")) for n in range(6)),
    )
    assert code == 1
    lines = report.summary(code, 1.0, color=False).splitlines()
    assert lines[-2] == (
        "skipped (upstream failed: root/build): root/deploy, root/docs-0, root/docs-1, root/docs-2, "
        "root/docs-3 and 2 more"
    )
    assert lines[-1].startswith("wtflow: wf failed in 1.0s: 1 failed, 7 skipped;")
