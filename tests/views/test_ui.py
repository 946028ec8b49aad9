"""`wtflow ui`: a real server in a subprocess, over a run going on in another process."""

from __future__ import annotations

import http.client
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.views.conftest import screenshot, wait


def _env(db_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WTFLOW_")}
    return {**env, "WTFLOW_DB_URL": db_url, "NO_COLOR": "1"}


class Server:
    def __init__(self, proc: subprocess.Popen[str], lines: list[str]) -> None:
        self.proc = proc
        self.lines = lines
        found = re.search(r"open http://(\S+?):(\d+)/(?:\?token=(\S+))?", "".join(lines))
        assert found, lines
        self.port = int(found[2])
        self.token = found[3]
        self.url = f"http://127.0.0.1:{self.port}/"

    def get(self, path: str, **headers: str) -> http.client.HTTPResponse:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        conn.request("GET", path, headers=headers)
        response = conn.getresponse()
        response.read()
        conn.close()
        return response


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Any]:
    """`serve(db_url, *args)` starts `wtflow ui --port 0 ...` and returns once it listens."""
    started: list[subprocess.Popen[str]] = []

    def start(db_url: str, *args: str) -> Server:
        proc = subprocess.Popen([sys.executable, "-m", "wtflow", "ui", "--port", "0", *args], cwd=tmp_path,
                                env=_env(db_url), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
        started.append(proc)
        assert proc.stdout is not None
        lines: list[str] = []
        while not lines or "Ctrl-C" not in lines[-1]:
            line = proc.stdout.readline()
            assert line, f"wtflow ui ended: {proc.wait()} {proc.stderr.read() if proc.stderr else ''}"
            lines.append(line)
        return Server(proc, lines)

    yield start
    for proc in started:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()


def test_beyond_localhost_without_a_token_is_refused(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "wtflow", "ui", "--host", "0.0.0.0"], cwd=tmp_path,
                            env=_env(f"sqlite:///{tmp_path / 'w.db'}"), capture_output=True, text=True, timeout=60)  # fmt: skip
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == (
        "wtflow: error: --host 0.0.0.0 serves the record beyond this machine, which needs a token; "
        "add --token (one is generated and printed) or --token SECRET\n"
    )


def test_beyond_localhost_every_request_needs_the_printed_token(tmp_path: Path, serve: Any) -> None:
    server = serve(f"sqlite:///{tmp_path / 'w.db'}", "--host", "0.0.0.0", "--token")
    assert "reachable beyond this machine" in "".join(server.lines)
    assert server.token
    assert len(server.token) >= 24
    assert server.get("/").status == 401
    assert server.get("/", Authorization="Bearer nope").status == 401
    assert server.get("/", Authorization=f"Bearer {server.token}").status == 200
    traded = server.get(f"/?workflow=ci&token={server.token}")  # the printed link: token for a cookie
    assert (traded.status, traded.headers["location"]) == (303, "/?workflow=ci")
    cookie = traded.headers["set-cookie"].split(";")[0]
    assert "HttpOnly" in traded.headers["set-cookie"]
    page = server.get("/?workflow=ci", Cookie=cookie)
    assert page.status == 200
    assert "script-src" not in page.headers["content-security-policy"]  # default-src 'self' covers it
    assert page.headers["x-content-type-options"] == "nosniff"


def test_on_localhost_other_host_names_are_not_answered(tmp_path: Path, serve: Any) -> None:
    server = serve(f"sqlite:///{tmp_path / 'w.db'}")
    assert server.token is None
    assert server.get("/", Host=f"127.0.0.1:{server.port}").status == 200
    assert server.get("/", Host=f"localhost:{server.port}").status == 200
    assert server.get("/", Host="attacker.example").status == 400  # DNS rebinding


def _start_run(tmp_path: Path, db_url: str) -> subprocess.Popen[bytes]:
    """Workflow 'live' in another process: node 'tail' prints a line, a second one once the file
    `go` exists, and ends once `done` exists; node 'after' follows it."""
    go, done = tmp_path / "go", tmp_path / "done"
    code = (
        "import os, time\nprint('first line', flush=True)\n"
        f"while not os.path.exists({str(go)!r}): time.sleep(0.02)\n"
        "print('second line', flush=True)\n"
        f"while not os.path.exists({str(done)!r}): time.sleep(0.02)\n"
    )
    script = tmp_path / "run_live.py"
    script.write_text(
        "import sys\nfrom pathlib import Path\nfrom wtflow import Command, Config, Engine, Node, PyFunc, Workflow\n"
        f"code = {code!r}\n"
        "tail = Node('tail', Command([sys.executable, '-c', code]))\n"
        "after = Node('after', Command('echo after'))\n"
        "wf = Workflow(name='live', root=Node('root', children=[tail, after]))\n"
        f"cfg = Config.load(environ={{}}, overrides={{'db.url': {db_url!r}, "
        f"'storage.state_dir': Path({str(tmp_path / 'state')!r}), 'run.console': 'quiet'}})\n"
        "sys.exit(Engine(wf, cfg).run())\n"
    )
    return subprocess.Popen([sys.executable, str(script)], cwd=tmp_path, env=_env(db_url))


@pytest.mark.browser
def test_a_running_node_streams_into_its_page(tmp_path: Path, db_url: str, serve: Any, browser: Any) -> None:
    from selenium.webdriver.common.by import By

    server = serve(db_url)  # before the run: it shows up on the list once it starts
    driver = browser
    driver.get(server.url)
    run = _start_run(tmp_path, db_url)
    try:
        # Pages of a run still going are replaced every poll, so links are read in one go
        # (an element found now may be gone at the next step) and followed like a click.
        run_page = wait(driver, lambda d: d.execute_script(
            "const row = document.querySelector('tr.run');"
            "return row && row.textContent.includes('live') && row.querySelector('a').href"), "the run on the list")  # fmt: skip
        assert re.fullmatch(rf"{server.url}runs/[0-9a-f]{{32}}", run_page)
        driver.get(run_page)
        node_page = wait(driver, lambda d: d.execute_script(
            "const a = document.querySelector('a[href$=\"/nodes/root/tail\"]'); return a && a.href"),
            "the run page with its tree")  # fmt: skip
        driver.get(node_page)
        pane = "#out-stdout"
        wait(driver, lambda d: "first line" in d.find_element(By.CSS_SELECTOR, pane).text, "the first line")
        driver.execute_script("window.samePage = true")
        (tmp_path / "go").touch()
        wait(driver, lambda d: "second line" in d.find_element(By.CSS_SELECTOR, pane).text, "the new line")
        assert driver.find_element(By.CSS_SELECTOR, pane).text == "first line\nsecond line"
        assert driver.execute_script("return window.samePage") is True, "the page reloaded"
        screenshot(driver, tmp_path / "ui-node.png")

        driver.get(run_page)
        driver.execute_script("window.samePage = true")
        (tmp_path / "done").touch()
        wait(
            driver, lambda d: d.find_elements(By.CSS_SELECTOR, "header.run.s-succeeded"), "the run to end", 60
        )
        assert driver.execute_script("return window.samePage") is True, "the page reloaded"
        assert len(driver.find_elements(By.CSS_SELECTOR, ".tl-row i")) == 2
        screenshot(driver, tmp_path / "ui.png")
        assert run.wait(30) == 0
    finally:
        (tmp_path / "go").touch()
        (tmp_path / "done").touch()
        run.wait(30)
