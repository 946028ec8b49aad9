"""The CLI's fixed cost: a command imports only what it needs (issue 18, item 6).

Checked by module, not by clock: `wtflow --version` and `wtflow list` must not load the engine,
asyncio, the consoles or SQLAlchemy, which together are most of a run's start-up; `--version`
loads no command and not even `typing`, and a command loads no other command's module."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

HEAVY = ("wtflow.engine", "asyncio", "wtflow.consoles", "wtflow.reports", "sqlalchemy", "aiofiles")
PROBE = """\
import sys
from wtflow.cli import main
try:
    main(sys.argv[1:])
except SystemExit:
    pass
print(sorted(sys.modules))
"""
WTFILE = (
    "import wtflow\n\n@wtflow.workflow\ndef ci():\n"
    '    return wtflow.Node(name="n", executable=wtflow.Command("true"))\n'
)


def _imported(cwd: Path, argv: list[str], probe: str = PROBE) -> set[str]:
    """The modules loaded once `main(argv)` (or another probe) has returned, in a fresh interpreter:
    one that coverage does not measure (in CI it would start in every subprocess, and load what
    it needs)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("COVERAGE_")}
    out = subprocess.run(
        [sys.executable, "-c", probe, *argv], cwd=cwd, env=env, capture_output=True, text=True, check=True
    ).stdout
    return set(ast.literal_eval(out.splitlines()[-1]))


def _loaded(modules: set[str], names: tuple[str, ...]) -> list[str]:
    return sorted(m for m in modules if any(m == n or m.startswith(f"{n}.") for n in names))


@pytest.mark.parametrize("argv", [["--version"], ["list"], ["--no-config", "config"]])
def test_a_command_that_runs_nothing_imports_no_engine(tmp_path: Path, argv: list[str]) -> None:
    (tmp_path / "wtfile.py").write_text(WTFILE)
    assert _loaded(_imported(tmp_path, argv), HEAVY) == []


def test_version_loads_no_command_no_settings_and_no_typing(tmp_path: Path) -> None:
    """`wtflow --version` is answered before any command's module or the settings are loaded."""
    modules = _imported(tmp_path, ["--version"])
    ours = sorted(m for m in modules if m.startswith("wtflow"))
    assert ours == ["wtflow", "wtflow._version", "wtflow.cli", "wtflow.commands", "wtflow.commands.exit_codes",
                    "wtflow.errors"]  # fmt: skip
    assert _loaded(modules, ("typing", "dataclasses", "pathlib")) == []


def test_list_loads_only_its_own_command_and_no_ini_parser(tmp_path: Path) -> None:
    """Each command's module is imported when that command is asked for, not every command's;
    and with no INI file the INI parser is not loaded."""
    (tmp_path / "wtfile.py").write_text(WTFILE)
    modules = _imported(tmp_path, ["list"])
    commands = sorted(m for m in modules if m.startswith("wtflow.commands."))
    assert commands == ["wtflow.commands.exit_codes", "wtflow.commands.list", "wtflow.commands.wtfiles"]
    # uuid brings platform: a node's token is random bytes instead. json and traceback (with
    # textwrap) are for --json and for a broken wtfile.
    unwanted = (
        "wtflow.db",
        "wtflow.provenance",
        "configparser",
        "difflib",
        "logging",
        "uuid",
        "json",
        "traceback",
    )
    assert _loaded(modules, unwanted) == []


def test_a_command_found_by_the_scout_parses_as_with_every_command(tmp_path: Path) -> None:
    """Global options before the command, one whose value is a command's name, and a mistake
    all read as they would with the whole parser built."""
    (tmp_path / "wtfile.py").write_text(WTFILE)
    (tmp_path / "run").mkdir()
    done = subprocess.run(
        [sys.executable, "-m", "wtflow", "--state-dir", "run", "-f", "wtfile.py", "list"],
        cwd=tmp_path, capture_output=True, text=True,
    )  # fmt: skip
    assert (done.returncode, done.stdout) == (0, "Found 1 workflow(s):\n- ci (1 node)\n")
    wrong = subprocess.run(
        [sys.executable, "-m", "wtflow", "lsit"], cwd=tmp_path, capture_output=True, text=True
    )
    assert wrong.returncode == 2
    assert "invalid choice: 'lsit' (choose from 'list', 'run'," in wrong.stderr


def test_the_package_names_stay_reachable() -> None:
    import wtflow

    assert set(wtflow.__all__) <= set(dir(wtflow))
    for name in wtflow.__all__:
        assert getattr(wtflow, name) is not None
    with pytest.raises(AttributeError, match="module 'wtflow' has no attribute 'Nope'"):
        _ = wtflow.Nope  # type: ignore[attr-defined]


def test_the_cli_default_wtfile_is_discovers() -> None:
    from wtflow import cli, discover

    assert cli.DEFAULT_WTFILE == discover.DEFAULT_WTFILE


RUN_PROBE = """\
import sys
import wtflow
from wtflow.config import Config
wf = wtflow.Workflow(name="w", root=wtflow.Node(name="n", executable=wtflow.Command("true")))
config = Config.load(environ={}, overrides={"run.console": sys.argv[1], "storage.state_dir": sys.argv[2],
                                            "db.url": ""})
assert wtflow.Engine(wf, config).run() == 0
print(sorted(sys.modules))
"""


@pytest.mark.parametrize(("console", "wanted"), [("quiet", []), ("raw", ["raw", "writer", "lines"])])
def test_a_run_imports_only_the_console_it_shows(tmp_path: Path, console: str, wanted: list[str]) -> None:
    """A quiet run, as scripts and benchmarks make, imports no console; a raw one (the API's
    default) not the plain console nor the CLI's summary."""
    modules = _imported(tmp_path, [console, str(tmp_path / "state")], RUN_PROBE)
    consoles = sorted(m.removeprefix("wtflow.consoles.") for m in modules if m.startswith("wtflow.consoles."))
    assert consoles == sorted(wanted)
