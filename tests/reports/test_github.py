"""GitHub Actions: groups, annotations, masks and the step summary, byte for byte, from a real run."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.cli.conftest import Run, WtfileWriter, cli_env
from wtflow.reports.github import command, escape_data, escape_property

SMALL = """
@wtflow.workflow
def t():
    return wtflow.Node(name="t", children=[
        wtflow.Node(name="hello", executable=wtflow.Command("echo hi; echo '::endgroup::'")),
        wtflow.Node(name="leak", executable=wtflow.Command('echo "token is $TOKEN"'),
                    env={"TOKEN": wtflow.Secret("s3cr3t-value")}),
        wtflow.Node(name="bad", executable=wtflow.Command(
            "echo first >&2; echo 'boom: 50% done, a:b' >&2; exit 2")),
        wtflow.Node(name="never", executable=wtflow.Command("echo never")),
    ])
"""

EXPECTED_LOG = """\
::add-mask::s3cr3t-value
::group::t/hello
::stop-commands::TOKEN
hi
::endgroup::
::TOKEN::
::endgroup::
::group::t/leak
::stop-commands::TOKEN
token is ***
::TOKEN::
::endgroup::
::group::t/bad
::stop-commands::TOKEN
first
boom: 50% done, a:b
::TOKEN::
::endgroup::
::error title=t/bad::exit 2: boom: 50%25 done, a:b
"""

EXPECTED_SUMMARY = """\
### wtflow: `t` failed

| node | status | attempts | duration |
| --- | --- | ---: | ---: |
| `t/hello` | ✓ succeeded | 1 | N.NNs |
| `t/leak` | ✓ succeeded | 1 | N.NNs |
| `t/bad` | ✗ failed (exit 2) | 1 | N.NNs |
| `t/never` | - skipped: upstream failed: t/bad | 0 |  |

#### Failures

`t/bad`: failed (exit 2), the last lines of stderr:

```text
first
boom: 50% done, a:b
```

"""


def _github_env(tmp_path: Path, summary: Path) -> dict[str, str]:
    return cli_env(tmp_path, GITHUB_ACTIONS="true", GITHUB_STEP_SUMMARY=str(summary))


def test_log_and_summary_byte_for_byte(wtflow: Run, wtfile: WtfileWriter, tmp_path: Path) -> None:
    wtfile(SMALL)
    summary = tmp_path / "summary.md"
    summary.write_text("earlier step\n")  # appended to, as GitHub expects
    result = wtflow("run", env=_github_env(tmp_path, summary))
    assert result.code == 1
    tokens = set(re.findall(r"::stop-commands::(\w+)", result.out))
    assert len(tokens) == 1
    (token,) = tokens
    assert len(token) == 32  # a node cannot guess it to end the stop early
    assert result.out.replace(token, "TOKEN") == EXPECTED_LOG
    text = summary.read_text()
    assert re.sub(r"\d+\.\d\ds", "N.NNs", text) == "earlier step\n" + EXPECTED_SUMMARY
    assert "s3cr3t-value" not in result.err


def test_parallel_nodes_never_share_a_group(wtflow: Run, wtfile: WtfileWriter, tmp_path: Path) -> None:
    wtfile("""
    @wtflow.workflow
    def fan():
        return wtflow.Node(name="fan", parallel=True, children=[
            wtflow.Node(name=f"n{i}", executable=wtflow.Command(
                f"echo start {i}; sleep 0.0{i % 3}; echo end {i} >&2; echo done {i}"))
            for i in range(30)
        ])
    """)
    result = wtflow("run", "--ci", "github", env=cli_env(tmp_path))
    assert result.code == 0
    blocks = re.findall(
        r"::group::fan/n(\d+)\n::stop-commands::\w+\n(.*?)::\w+::\n::endgroup::\n", result.out, re.S
    )
    assert sorted(int(i) for i, _ in blocks) == list(range(30))
    for i, body in blocks:
        # Only this node's lines; stdout in its order (stderr comes through another pipe, so
        # where it falls between them is how wtflow received it).
        lines = body.splitlines()
        assert sorted(lines) == sorted([f"start {i}", f"end {i}", f"done {i}"])
        assert [x for x in lines if not x.startswith("end")] == [f"start {i}", f"done {i}"]


def test_retries_and_time_outs_are_annotated_once(wtflow: Run, wtfile: WtfileWriter, tmp_path: Path) -> None:
    wtfile("""
    @wtflow.workflow
    def t():
        return wtflow.Node(name="t", parallel=True, children=[
            wtflow.Node(name="flaky", executable=wtflow.Command("echo nope >&2; exit 1"),
                        retries=1, retry_delay=0),
            wtflow.Node(name="slow", executable=wtflow.Command("sleep 30"), timeout=0.2),
            wtflow.Node(name="ok-to-fail", executable=wtflow.Command("exit 4"), allow_failure=True),
        ])
    """)
    result = wtflow("run", "--ci", "github", env=cli_env(tmp_path))
    assert result.code == 1
    assert result.out.count("::group::t/flaky\n") == 1
    assert result.out.count("::group::t/flaky (attempt 2)\n") == 1
    annotations = sorted(
        line for line in result.out.splitlines() if line.startswith(("::error", "::warning"))
    )
    assert annotations == [
        "::error title=t/flaky::exit 1: nope",
        "::error title=t/slow::timed out",
        "::warning title=t/ok-to-fail::exit 4",
    ]


def test_ci_none_switches_it_off_and_quiet_keeps_only_annotations(
    wtflow: Run, wtfile: WtfileWriter, tmp_path: Path
) -> None:
    wtfile(SMALL)
    summary = tmp_path / "summary.md"
    off = wtflow("run", "--ci", "none", env=_github_env(tmp_path, summary))
    assert off.code == 1
    assert "::" not in off.out.replace("echo '::endgroup::'", "").replace("[t/hello] ::endgroup::", "")
    assert "[t/hello] hi\n" in off.out  # the plain console again
    assert not summary.exists()
    by_setting = wtflow("run", env={**_github_env(tmp_path, summary), "WTFLOW_CI": "none"})
    assert by_setting.code == 1
    assert "::group::" not in by_setting.out
    assert "[t/hello] hi\n" in by_setting.out
    assert not summary.exists()
    quiet = wtflow("run", "-q", env=_github_env(tmp_path, summary))
    assert quiet.code == 1
    assert quiet.out == "::add-mask::s3cr3t-value\n::error title=t/bad::exit 2: boom: 50%25 done, a:b\n"
    assert summary.exists()


@pytest.mark.parametrize(
    ("text", "data", "prop"),
    [
        ("50% a:b, c", "50%25 a:b, c", "50%25 a%3Ab%2C c"),
        ("line1\r\nline2", "line1%0D%0Aline2", "line1%0D%0Aline2"),
        ("%0A", "%250A", "%250A"),
    ],
)
def test_escaping_follows_the_workflow_command_rules(text: str, data: str, prop: str) -> None:
    assert escape_data(text) == data
    assert escape_property(text) == prop


def test_command_puts_properties_before_the_message() -> None:
    assert command("error", "exit 1: a\nb", title="ci/x,y:z") == "::error title=ci/x%2Cy%3Az::exit 1: a%0Ab\n"
    assert command("endgroup", "") == "::endgroup::\n"


def test_a_big_fan_out_lists_only_what_did_not_pass(
    wtflow: Run, wtfile: WtfileWriter, tmp_path: Path
) -> None:
    wtfile("""
    @wtflow.workflow
    def fan():
        return wtflow.Node(name="fan", parallel=True, children=[
            wtflow.Node(name=f"n{i}", executable=wtflow.Command("exit 1" if i == 7 else "true"))
            for i in range(301)
        ])
    """)
    summary = tmp_path / "summary.md"
    assert wtflow("run", "-q", env=_github_env(tmp_path, summary)).code == 1
    rows = [line for line in summary.read_text().splitlines() if line.startswith("| `")]
    assert [re.sub(r"\d+\.\d\ds", "N.NNs", row) for row in rows] == [
        "| `fan/n7` | ✗ failed (exit 1) | 1 | N.NNs |"
    ]
    assert "\n300 more nodes not listed (see the JUnit report).\n" in summary.read_text()
