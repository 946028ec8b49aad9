"""GitLab CI: one collapsible section per attempt, named by GitLab's rules, from a real run."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from tests.cli.conftest import WTFLOW, Run, WtfileWriter, cli_env
from wtflow.reports.gitlab import section_name

TREE = """
@wtflow.workflow
def t():
    return wtflow.Node(name="t", parallel=True, children=[
        wtflow.Node(name="unit tests", executable=wtflow.Command("echo passed")),
        wtflow.Node(name="lint", executable=wtflow.Command('echo "E501 $KEY" >&2; exit 1'),
                    env={"KEY": wtflow.Secret("k-123")}),
    ])
"""

SECTION = re.compile(
    r"\x1b\[0Ksection_start:(\d+):([\w.-]+)(\[collapsed=true\])?\r\x1b\[0K([^\n]*)\n"
    r"(.*?)"
    r"\x1b\[0Ksection_end:(\d+):\2\r\x1b\[0K\n",
    re.S,
)


def test_each_node_gets_a_section_collapsed_when_it_passed(wtfile: WtfileWriter, tmp_path: Path) -> None:
    wtfile(TREE)
    # Bytes: text mode would turn the \r of the section lines into \n.
    proc = subprocess.run(
        [*WTFLOW, "run"], cwd=tmp_path, env=cli_env(tmp_path, GITLAB_CI="true"),
        capture_output=True, timeout=60, check=False,
    )  # fmt: skip
    assert proc.returncode == 1
    out, err = proc.stdout.decode(), proc.stderr.decode()
    sections = {m[2]: m for m in SECTION.finditer(out)}
    assert set(sections) == {"wtflow_1_1_t.unit_tests", "wtflow_2_1_t.lint"}
    unit, lint = sections["wtflow_1_1_t.unit_tests"], sections["wtflow_2_1_t.lint"]
    assert unit[3] == "[collapsed=true]"
    assert re.fullmatch(r"t/unit tests succeeded in \d+\.\d\ds", unit[4])
    assert unit[5] == "passed\n"
    assert lint[3] is None  # a failure stays open
    assert re.fullmatch(r"t/lint failed \(exit 1\) in \d+\.\d\ds", lint[4])
    assert lint[5] == "E501 ***\n"
    for m in (unit, lint):
        assert int(m[1]) <= int(m[6])
    # Outside the sections: only the red line for the failure.
    rest = SECTION.sub("", out)
    assert rest == "\x1b[31;1mt/lint failed: exit 1: E501 ***\x1b[0m\n"
    assert "k-123" not in out
    assert "E501" in err  # the CLI's closing summary, which is not the CI log's to mask


def test_ci_none_switches_sections_off(wtflow: Run, wtfile: WtfileWriter, tmp_path: Path) -> None:
    wtfile(TREE)
    result = wtflow("run", "--ci", "none", env=cli_env(tmp_path, GITLAB_CI="true"))
    assert result.code == 1
    assert "section_start" not in result.out
    assert "[t/unit tests] passed\n" in result.out


def test_section_names_keep_only_what_gitlab_allows() -> None:
    assert section_name(("ci", "build: x86/64", "ünï"), 7, 2) == "wtflow_7_2_ci.build__x86.64._n_"
