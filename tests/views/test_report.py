"""The HTML report: written by a run (however it ends) and by `wtflow report` from the record."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import config, py
from tests.views.big_run import big_run
from tests.views.conftest import screenshot, wait
from wtflow import Command, Config, Engine, Node, Workflow
from wtflow.reports.html import write_report

HOSTILE = "<script>alert(1)</script><img src=x onerror=alert(2)>"


def failing_workflow(name: str = "ci") -> Workflow:
    """lint and tests at once, tests failing twice (retried) with hostile output; build skipped."""
    tests = py(
        "import sys; print('collected 3 items'); "
        f"print('E   assert ' + {HOSTILE!r}, file=sys.stderr); print('\\x1b[31mFAILED\\x1b[0m', file=sys.stderr); "
        "sys.exit(1)"
    )
    return Workflow(
        name=name,
        root=Node(
            "ci",
            children=[
                Node(
                    "checks",
                    parallel=True,
                    children=[
                        # A shell builtin against two Python starts and a retry delay: the
                        # critical path is tests' two attempts however loaded the machine is.
                        Node("lint", Command("echo lint ok")),
                        Node("tests", Command(tests), retries=1, retry_delay=0.3),
                    ],
                ),
                Node("build", Command("echo build")),
            ],
        ),
    )


def wtflow(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("WTFLOW_")}
    environ.update({"NO_COLOR": "1", **env})
    return subprocess.run([sys.executable, "-m", "wtflow", *args], cwd=cwd, env=environ,
                          capture_output=True, text=True, timeout=60)  # fmt: skip


def test_a_failed_run_writes_its_report_without_a_database(tmp_path: Path) -> None:
    report = tmp_path / "out" / "run.html"  # the folder is created
    code = Engine(failing_workflow(), config(tmp_path, report__html=report)).run()
    assert code == 1
    text = report.read_text()
    assert "assert &lt;script&gt;alert(1)&lt;/script&gt;&lt;img src=x onerror=alert(2)&gt;" in text
    assert "FAILED" in text
    assert "\x1b" not in text  # colour codes are dropped, not shown as garbage
    # The node's output is text, never markup: the only script is the report's own.
    assert text.count("<script") == 1
    assert "<img" not in text
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", text), "the report must load nothing"
    assert "Content-Security-Policy" in text
    assert text.count('class="tl-row') == 3  # lint, tests twice
    assert re.search(r'<details class="node s-failed crit" id="n3"', text)  # tests: the critical path


def test_the_report_from_the_record_is_the_report_of_the_run(tmp_path: Path, db_url: str) -> None:
    at_end = tmp_path / "at-end.html"
    engine = Engine(failing_workflow(), config(tmp_path, db__url=db_url, report__html=at_end))
    assert engine.run() == 1
    result = wtflow("report", engine.run_id[:10], "-o", "later.html", cwd=tmp_path, WTFLOW_DB_URL=db_url)
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"wrote the report of run {engine.run_id[:8]} (ci, failed) to later.html\n"
    later = (tmp_path / "later.html").read_text()

    def shape(text: str) -> list[str]:  # what each node shows, without the times
        return re.findall(r'<details class="node [^"]*" id="n\d+"|<em>[^<]*</em>|<pre>[^<]*</pre>', text)

    assert shape(later) == shape(at_end.read_text())
    assert later.count('class="tl-row') == 3


def test_report_cli_errors_are_one_line(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'runs.db'}"
    Engine(failing_workflow(), config(tmp_path, db__url=db)).run()
    for args, message in [
        (("report", "feedbeef"), "wtflow: error: no run with id 'feedbeef'; see `wtflow runs` for the recorded ones\n"),
        (("report", "-o", str(tmp_path)), f"wtflow: error: -o {str(tmp_path)!r} is a folder; give a file name, e.g. -o {tmp_path / 'run.html'}\n"),
    ]:  # fmt: skip
        result = wtflow(*args, cwd=tmp_path, WTFLOW_DB_URL=db)
        assert (result.returncode, result.stderr) == (2, message)


def test_run_writes_the_report_asked_for_by_flag_env_or_ini(tmp_path: Path) -> None:
    (tmp_path / "wtfile.py").write_text(
        "import wtflow\n\n@wtflow.workflow\ndef ci():\n"
        "    return wtflow.Node('ci', executable=wtflow.Command('echo hi; exit 3'))\n"
    )
    state = {"WTFLOW_STATE_DIR": str(tmp_path / "state")}
    flag = wtflow("run", "--report", "flag.html", cwd=tmp_path, **state)
    env = wtflow("run", cwd=tmp_path, WTFLOW_REPORT="env.html", **state)
    assert (flag.returncode, env.returncode) == (1, 1)
    for name in ("flag.html", "env.html"):
        assert '<details class="node s-failed' in (tmp_path / name).read_text()
    ini = tmp_path / "wtflow.ini"
    ini.write_text("[report]\nhtml = reports/run.html\n")
    assert Config.from_ini(ini, environ={}).report.html == Path("reports/run.html")


@pytest.mark.parametrize("where", ["taken/run.html", "folder"])
def test_a_report_path_that_cannot_be_written_stops_the_run_before_it_starts(
    tmp_path: Path, where: str
) -> None:
    (tmp_path / "wtfile.py").write_text(
        "import wtflow\n\n@wtflow.workflow\ndef ci():\n"
        "    return wtflow.Node('ci', executable=wtflow.Command('touch ran'))\n"
    )
    (tmp_path / "taken").write_text("a file, not a folder")
    (tmp_path / "folder").mkdir()
    result = wtflow("run", "--report", where, cwd=tmp_path, WTFLOW_DB_URL="")
    problem = "taken is a file, not a folder" if where.startswith("taken") else "is a folder"
    assert (result.returncode, result.stdout, result.stderr) == (
        2, "", f"wtflow: error: HTML report {where!r}: {problem}; "
               "pass a writable file path to --report (or WTFLOW_REPORT)\n",
    )  # fmt: skip
    assert not (tmp_path / "ran").exists()


@pytest.fixture(scope="module")
def big_report(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], Path]:
    """The report of a 5000-node run (made once: its 10,000 output files take a while)."""
    folder = tmp_path_factory.mktemp("big")
    run = big_run(folder)
    write_report(run, folder / "big.html")
    return run, folder / "big.html"


def test_a_5000_node_report_stays_small(big_report: tuple[dict[str, Any], Path]) -> None:
    size = big_report[1].stat().st_size
    assert size < 5_000_000, f"{size:,} bytes"  # measured: 4.2 MB


# -- in a browser --------------------------------------------------------------------------


@pytest.mark.browser
def test_the_report_of_a_failed_run_in_a_browser(tmp_path: Path, browser: object) -> None:
    from selenium.webdriver.common.by import By

    report = tmp_path / "run.html"
    assert Engine(failing_workflow(), config(tmp_path, report__html=report)).run() == 1
    driver: Any = browser
    driver.get(report.as_uri())
    failed = driver.find_element(By.CSS_SELECTOR, 'details.node.s-failed[id="n3"]')
    assert not failed.is_displayed()  # collapsed below the root
    for node_id in ("n1", "n3"):  # checks, then tests
        driver.find_element(By.CSS_SELECTOR, f"#{node_id} > summary").click()
    wait(driver, lambda d: failed.find_element(By.CSS_SELECTOR, ".out.stderr pre").is_displayed(),
         "the failed node's stderr tail to show")  # fmt: skip
    tail = failed.find_element(By.CSS_SELECTOR, ".out.stderr pre").text
    assert tail == f"E   assert {HOSTILE}\nFAILED"
    assert driver.execute_script("return document.querySelectorAll('img').length") == 0
    bars = driver.find_elements(By.CSS_SELECTOR, ".tl-row i")
    assert len(bars) == 3
    assert all(bar.size["width"] >= 2 for bar in bars)
    assert len(driver.find_elements(By.CSS_SELECTOR, ".tl-row.crit i")) == 2  # tests' two attempts
    screenshot(driver, tmp_path / "report.png")


@pytest.mark.browser
def test_a_5000_node_report_opens_and_scrolls(
    tmp_path: Path, browser: object, big_report: tuple[dict[str, Any], Path]
) -> None:
    from selenium.webdriver.common.by import By

    run, report = big_report
    driver: Any = browser
    driver.get(report.as_uri())
    assert driver.execute_script("return document.querySelectorAll('details.node').length") == len(
        run["nodes"]
    )
    assert len(driver.find_elements(By.CSS_SELECTOR, ".tl-row i")) == sum(
        len(n["attempts"]) for n in run["nodes"]
    )
    driver.find_element(By.CSS_SELECTOR, "[data-tree=failures]").click()
    opened = driver.execute_script(
        "return [...document.querySelectorAll('details.node[open]')].map(d => d.id)"
    )
    assert len(opened) == 1 + 5 + 5  # the root, the groups of the five failed nodes, and those nodes
    driver.execute_script("window.scrollTo(0, document.body.scrollHeight)")
    wait(driver, lambda d: d.execute_script("return window.scrollY") > 0, "the page to scroll")
    last = driver.find_elements(By.CSS_SELECTOR, ".tl-row")[-1]
    assert last.is_displayed()
    screenshot(driver, tmp_path / "big.png")


def test_the_report_and_the_cli_need_no_web_extra() -> None:
    code = (
        "import sys, wtflow.cli, wtflow.reports.html\n"
        "loaded = {m.partition('.')[0] for m in sys.modules} & {'starlette', 'uvicorn', 'jinja2'}\n"
        "assert not loaded, loaded\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
