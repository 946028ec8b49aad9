"""--junit-xml: the report validates against the JUnit schema Jenkins, GitLab and GitHub read."""

from __future__ import annotations

import signal
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import xmlschema

from tests.cli.conftest import WTFLOW, Run, WtfileWriter, cli_env
from tests.reports.waiting import node_event, wait_for_event

SCHEMA = xmlschema.XMLSchema(Path(__file__).with_name("junit-10.xsd"))

EVERY_STATUS = r"""
OUTPUT = "import os, sys; sys.stdout.buffer.write(b'ok\\x00\\x01\\x1b[31mred\\x1b[0m \\xff\\n' + os.environ['TOKEN'].encode())"


@wtflow.workflow
def every():
    return wtflow.Node(name="every", children=[
        wtflow.Node(name="ok", executable=wtflow.Command([sys.executable, "-c", OUTPUT]),
                    env={"TOKEN": wtflow.Secret("hunter2")}),
        wtflow.Node(name="allowed", executable=wtflow.Command("echo tolerated >&2; exit 1"),
                    allow_failure=True, children=[wtflow.Node(name="child", executable=wtflow.Command("true"))]),
        wtflow.Node(name="checks", parallel=True, children=[
            wtflow.Node(name="slow", executable=wtflow.Command("sleep 60"), timeout=0.5),
            wtflow.Node(name="bad", executable=wtflow.Command("echo 'assert 1 == 2' >&2; exit 3")),
            wtflow.Node(name="hang", executable=wtflow.Command("sleep 60")),
        ]),
        wtflow.Node(name="after", executable=wtflow.Command("true")),
    ])
"""


def _cases(path: Path) -> dict[str, ET.Element]:
    SCHEMA.validate(str(path))
    return {case.get("name", ""): case for case in ET.parse(path).getroot().iter("testcase")}


def _verdict(case: ET.Element) -> tuple[str, str | None] | None:
    found = [child for child in case if child.tag in ("failure", "error", "skipped")]
    return (found[0].tag, found[0].get("type")) if found else None


def test_every_status_validates_even_when_the_run_is_interrupted(
    wtfile: WtfileWriter, tmp_path: Path
) -> None:
    wtfile(EVERY_STATUS)
    report, events = tmp_path / "out" / "junit.xml", tmp_path / "events.jsonl"
    proc = subprocess.Popen(
        [*WTFLOW, "run", "--junit-xml", str(report), "--events", str(events)],
        cwd=tmp_path, env=cli_env(tmp_path), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    seen: list[dict[str, object]] = []
    wait_for_event(events, node_event("NodeFinished", "slow"), seen=seen)
    wait_for_event(events, node_event("NodeFinished", "bad"), seen=seen)
    wait_for_event(events, node_event("NodeStarted", "hang"), seen=seen)
    proc.send_signal(signal.SIGTERM)  # `hang` and `after` are cancelled; the report is still written
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 143, err

    cases = _cases(report)
    assert {name: _verdict(case) for name, case in cases.items()} == {
        "ok": None,
        "allowed": ("skipped", "allowed_failure"),
        "child": ("skipped", None),
        "slow": ("error", "timed_out"),
        "bad": ("failure", "failed"),
        "hang": ("error", "cancelled"),
        "after": ("error", "cancelled"),
    }
    assert cases["bad"].get("classname") == "every/checks/bad"
    failure = cases["bad"].find("failure")
    assert failure is not None
    assert failure.get("message") == "exit 3"
    assert failure.text == "assert 1 == 2\n"
    skipped = cases["child"].find("skipped")
    assert skipped is not None
    assert skipped.get("message") == "upstream failed: every/allowed"
    # Control characters and colours are gone, invalid UTF-8 is replaced, the secret is masked.
    out = cases["ok"].findtext("system-out") or ""
    head, body = out.split("\n", 1)
    assert head.startswith("[wtflow: ")
    assert head.endswith("/every/ok/stdout]")
    assert body == "ok\ufffd\ufffdred \ufffd\n***"
    assert "hunter2" not in report.read_text()
    suite = ET.parse(report).getroot().find("testsuite")
    assert suite is not None
    assert [suite.get(k) for k in ("name", "tests", "failures", "errors", "skipped")] == [
        "every", "7", "1", "3", "2",
    ]  # fmt: skip


def test_output_past_the_cap_keeps_its_tail_and_names_the_file(
    wtflow: Run, wtfile: WtfileWriter, tmp_path: Path
) -> None:
    wtfile("""
    @wtflow.workflow
    def big():
        return wtflow.Node(name="big", executable=wtflow.Command("seq 1 100000"))
    """)
    assert wtflow("run", "--junit-xml", "j.xml").code == 0
    out = _cases(tmp_path / "j.xml")["big"].findtext("system-out") or ""
    head, body = out.split("\n", 1)
    size = len(b"".join(b"%d\n" % i for i in range(1, 100001)))
    assert head.startswith(f"[wtflow: the last 65536 of {size} bytes; all of it in ")
    assert body.endswith("99999\n100000\n")
    assert len(body.encode()) == 65536


TWO = """
@wtflow.workflow
def first():
    return wtflow.Node(name="first", executable=wtflow.Command("echo one"))


@wtflow.workflow
def second():
    return wtflow.Node(name="second", executable=wtflow.Command("echo two"))
"""


def test_workflows_of_one_run_share_the_file_and_a_new_run_starts_it_afresh(
    wtflow: Run, wtfile: WtfileWriter, tmp_path: Path
) -> None:
    wtfile(TWO)
    report = tmp_path / "j.xml"
    env = cli_env(tmp_path, WTFLOW_JUNIT_XML=str(report))
    for _ in range(2):  # the second run replaces the first run's file instead of adding to it
        assert wtflow("run", env=env).code == 0
        SCHEMA.validate(str(report))
        root = ET.parse(report).getroot()
        assert [s.get("name") for s in root.iter("testsuite")] == ["first", "second"]
        assert root.get("tests") == "2"


def test_ini_setting_writes_the_report(wtflow: Run, wtfile: WtfileWriter, tmp_path: Path) -> None:
    wtfile(TWO)
    (tmp_path / "wtflow.ini").write_text("[report]\njunit_xml = reports/junit.xml\n")
    assert wtflow("run", "first").code == 0
    assert list(_cases(tmp_path / "reports" / "junit.xml")) == ["first"]


def test_a_report_path_that_cannot_be_written_is_a_usage_error(
    wtflow: Run, wtfile: WtfileWriter, tmp_path: Path
) -> None:
    wtfile(TWO)
    (tmp_path / "taken").write_text("a file, not a folder")
    result = wtflow("run", "--junit-xml", "taken/j.xml")
    assert result.code == 2
    assert result.err.startswith("wtflow: error: JUnit report 'taken/j.xml': ")
    assert result.err.rstrip().endswith("; pass a writable file path to --junit-xml (or WTFLOW_JUNIT_XML)")
    assert len(result.err.splitlines()) == 1


def test_the_ci_example_as_its_readme_runs_it(wtflow: Run, tmp_path: Path) -> None:
    wtfile = Path(__file__).parents[2] / "examples" / "ci" / "wtfile.py"
    env = cli_env(tmp_path, GITHUB_ACTIONS="true", WTFLOW_ARTIFACTS_DIR="artifacts")
    result = wtflow("-f", str(wtfile), "run", "--junit-xml", "reports/junit.xml", env=env)
    assert result.code == 0, result
    assert {name: _verdict(case) for name, case in _cases(tmp_path / "reports" / "junit.xml").items()} == {
        "lint": None, "tests": None, "build": None,
    }  # fmt: skip
    assert "::group::ci/checks/tests\n" in result.out
    assert any((tmp_path / "artifacts" / "ci").iterdir())


def test_retried_attempts_are_flaky_when_a_later_one_passed(
    wtflow: Run, wtfile: WtfileWriter, tmp_path: Path
) -> None:
    wtfile("""
    @wtflow.workflow
    def r():
        flaky = "if [ -e once ]; then echo fine; else touch once; echo 'first try' >&2; exit 5; fi"
        return wtflow.Node(name="r", parallel=True, children=[
            wtflow.Node(name="flaky", executable=wtflow.Command(flaky), retries=2, retry_delay=0),
            wtflow.Node(name="broken", executable=wtflow.Command("echo never >&2; exit 1"),
                        retries=1, retry_delay=0),
        ])
    """)
    assert wtflow("run", "--junit-xml", "j.xml").code == 1
    cases = _cases(tmp_path / "j.xml")
    flaky, broken = cases["flaky"], cases["broken"]
    assert [(c.tag, c.get("message")) for c in flaky if c.tag != "system-out"] == [
        ("flakyFailure", "attempt 1: exit 5"),
    ]
    assert flaky.findtext("flakyFailure/stackTrace") == "first try\n"
    assert [(c.tag, c.get("message")) for c in broken if c.tag != "system-err"] == [
        ("failure", "exit 1"), ("rerunFailure", "attempt 1: exit 1"),
    ]  # fmt: skip


def test_an_events_path_that_cannot_be_written_is_a_usage_error(
    wtflow: Run, wtfile: WtfileWriter, tmp_path: Path
) -> None:
    wtfile(TWO)
    (tmp_path / "taken").write_text("a file, not a folder")
    result = wtflow("run", "--events", "taken/e.jsonl")
    assert result.code == 2
    assert result.err.startswith("wtflow: error: events file 'taken/e.jsonl': ")
    assert result.err.endswith("; pass a writable path to --events (or WTFLOW_EVENTS)\n")
