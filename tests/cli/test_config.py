"""Settings at the CLI: wtflow.ini (found or given), WTFLOW_* variables, flags — in that order."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cli.conftest import Run, WtfileWriter, cli_env

ONE = (
    '@wtflow.workflow\ndef ci():\n    return wtflow.Node(name="step", executable=wtflow.Command("echo hi"))\n'
)


def _output_root(tmp_path: Path) -> str:
    """Which of the candidate artifacts folders the run wrote into."""
    found = [
        name for name in ("from-ini", "from-env", "from-flag") if (tmp_path / name / "ci" / "latest").exists()
    ]
    assert len(found) == 1, found
    return found[0]


@pytest.mark.parametrize(
    ("env", "flags", "winner"),
    [
        ({}, (), "from-ini"),
        ({"WTFLOW_ARTIFACTS_DIR": "from-env"}, (), "from-env"),
        ({"WTFLOW_ARTIFACTS_DIR": "from-env"}, ("--artifacts-dir", "from-flag"), "from-flag"),
    ],
)
def test_ini_then_environment_then_flags(
    wtflow: Run,
    wtfile: WtfileWriter,
    tmp_path: Path,
    env: dict[str, str],
    flags: tuple[str, ...],
    winner: str,
) -> None:
    wtfile(ONE)
    (tmp_path / "wtflow.ini").write_text("[storage]\nartifacts_dir = from-ini\n")
    result = wtflow("run", *flags, env=cli_env(tmp_path, **env))
    assert result.code == 0, result
    assert _output_root(tmp_path) == winner


@pytest.mark.parametrize("flag", ["--artifacts-dir", "--state-dir"])
def test_an_empty_folder_flag_is_the_default_as_an_empty_variable_is(
    wtflow: Run, wtfile: WtfileWriter, tmp_path: Path, flag: str
) -> None:
    """`--artifacts-dir "$UNSET"` in a CI script must not fill the checkout's root with runs."""
    wtfile(ONE)
    env = {k: v for k, v in cli_env(tmp_path).items() if k != "WTFLOW_STATE_DIR"}
    assert wtflow("run", flag, "", env=env).code == 0
    assert (tmp_path / ".wtflow" / "artifacts" / "ci" / "latest").exists()
    assert not (tmp_path / "ci").exists()


def test_no_config_ignores_wtflow_ini(wtflow: Run, wtfile: WtfileWriter, tmp_path: Path) -> None:
    wtfile(ONE)
    (tmp_path / "wtflow.ini").write_text("[storage]\nartifacts_dir = from-ini\n")
    assert wtflow("--no-config", "run").code == 0
    assert not (tmp_path / "from-ini").exists()


def test_config_option_reads_the_given_file(wtflow: Run, wtfile: WtfileWriter, tmp_path: Path) -> None:
    wtfile(ONE)
    (tmp_path / "ci.ini").write_text("[storage]\nartifacts_dir = from-flag\n")
    assert wtflow("-c", "ci.ini", "run").code == 0
    assert _output_root(tmp_path) == "from-flag"


def test_ini_console_setting_is_honoured(wtflow: Run, wtfile: WtfileWriter, tmp_path: Path) -> None:
    wtfile(ONE)
    (tmp_path / "wtflow.ini").write_text("[run]\nconsole = raw\n")
    assert wtflow("run").out == "hi\n"


def test_missing_config_file_is_one_line_and_exit_2(wtflow: Run, wtfile: WtfileWriter) -> None:
    wtfile(ONE)
    result = wtflow("-c", "nope.ini", "run")
    assert (result.code, result.err) == (
        2,
        "wtflow: error: config file 'nope.ini' does not exist; check the path given to -c\n",
    )


def test_malformed_config_file_is_one_line_and_exit_2(
    wtflow: Run, wtfile: WtfileWriter, tmp_path: Path
) -> None:
    wtfile(ONE)
    (tmp_path / "bad.ini").write_text("this is not ini\n")
    result = wtflow("-c", "bad.ini", "list")
    assert result.code == 2
    assert result.err.startswith("wtflow: error: bad.ini:1: not a valid INI file: "), result
    assert result.err.count("\n") == 1


def test_unknown_key_in_ini_names_the_known_ones(wtflow: Run, wtfile: WtfileWriter, tmp_path: Path) -> None:
    wtfile(ONE)
    (tmp_path / "wtflow.ini").write_text("[run]\nignore_failures = true\n")
    result = wtflow("run")
    assert result.code == 2
    assert result.err.startswith(
        "wtflow: error: wtflow.ini: unknown key 'ignore_failures' in [run]; known keys: "
    )


def test_bad_environment_value_names_the_variable(wtflow: Run, wtfile: WtfileWriter, tmp_path: Path) -> None:
    wtfile(ONE)
    result = wtflow("run", env=cli_env(tmp_path, WTFLOW_IGNORE_FAILURE="maybe"))
    assert (result.code, result.err) == (
        2,
        "wtflow: error: WTFLOW_IGNORE_FAILURE='maybe' is not a boolean; use one of 0, 1, true, false, yes, no, on, off\n",
    )


@pytest.mark.parametrize("url", ["sqlite://", "sqlite:///:memory:", "sqlite:///file:x?mode=memory&uri=true"])
def test_an_in_memory_database_is_refused_before_anything_runs(
    wtflow: Run, wtfile: WtfileWriter, tmp_path: Path, url: str
) -> None:
    """Each connection would get its own empty database, and the record would be gone at the end."""
    wtfile(ONE)
    result = wtflow("run", env=cli_env(tmp_path, WTFLOW_DB_URL=url))
    assert (result.code, result.out, result.err) == (
        2,
        "",
        f"wtflow: error: WTFLOW_DB_URL={url!r} is an in-memory SQLite database, which keeps no record; "
        "use a file, e.g. sqlite:///wtflow.db, or an empty value to record nothing\n",
    )
    assert not (tmp_path / ".wtflow" / "artifacts").exists()


def test_config_and_no_config_together_is_a_usage_error(wtflow: Run) -> None:
    result = wtflow("-c", "x.ini", "--no-config", "list")
    assert result.code == 2
    assert "not allowed with argument" in result.err


def test_unwritable_state_dir_is_a_usage_error(wtflow: Run, wtfile: WtfileWriter, tmp_path: Path) -> None:
    wtfile(ONE)
    (tmp_path / "file").write_text("")
    result = wtflow("--state-dir", "file/state", "run")
    assert result.code == 2
    assert result.err.startswith("wtflow: error: "), result
    assert result.err.count("\n") == 1, result


def test_unknown_wtflow_variable_is_one_warning_naming_the_closest(
    wtflow: Run, wtfile: WtfileWriter, tmp_path: Path
) -> None:
    wtfile(ONE)
    env = cli_env(tmp_path, WTFLOW_MAX_PARALEL="2", WTFLOW_RUN_ID="outer", WTFLOW_NODE="outer/step")
    result = wtflow("run", "--console", "raw", env=env)
    assert (result.code, result.out) == (0, "hi\n")
    assert result.err.startswith(
        "wtflow: warning: WTFLOW_MAX_PARALEL is not a wtflow setting and is ignored; "
        "did you mean WTFLOW_MAX_PARALLEL?\n"
    )
    assert result.err.count("wtflow: warning:") == 1, result


def test_config_command_shows_each_value_and_its_source(wtflow: Run, tmp_path: Path) -> None:
    (tmp_path / "wtflow.ini").write_text(
        "[run]\nmax_parallel = 3 ; ini\n[database]\nurl = postgresql://bob:pw@h/db\n"
    )
    env = cli_env(tmp_path, WTFLOW_KILL_GRACE="4")
    del env["WTFLOW_DB_URL"]
    result = wtflow("config", env=env)
    lines = {line.split()[0]: line.split()[1:] for line in result.out.splitlines()[1:]}
    assert result.code == 0, result
    assert result.out.splitlines()[0].split() == ["SETTING", "VALUE", "SOURCE"]
    assert lines["run.max_parallel"] == ["3", "wtflow.ini:2"]
    assert lines["run.kill_grace"] == ["4.0", "WTFLOW_KILL_GRACE"]
    assert lines["database.url"] == ["postgresql://bob:***@h/db", "wtflow.ini:4"]
    assert lines["storage.state_dir"] == [str(tmp_path / "state"), "WTFLOW_STATE_DIR"]
    assert lines["run.timeout"] == ["none", "default"]
    assert "pw@" not in result.out
    flagged = json.loads(wtflow("--db-url", "", "config", "--json", env=env).out)
    url = next(row for row in flagged if row["setting"] == "database.url")
    assert url == {"setting": "database.url", "value": None, "source": "flag", "env": "WTFLOW_DB_URL",
                   "ini": "[database] url"}  # fmt: skip
