from __future__ import annotations

from pathlib import Path

import pytest

from wtflow import Config, ConfigError, DatabaseConfig, RunConfig, StorageConfig
from wtflow.config import default_max_parallel, mask_url, values_from_env, values_from_ini


def test_defaults_need_no_setup() -> None:
    cfg = Config.load(environ={})
    assert cfg.run.ignore_failure is False
    assert cfg.run.max_parallel == default_max_parallel() >= 8
    state = cfg.storage.resolved_state_dir()
    assert state == Path(".wtflow").absolute()
    assert cfg.storage.resolved_artifacts_dir() == state / "artifacts"
    assert cfg.db.resolved_url(state) == f"sqlite:///{state / 'wtflow.db'}"


def test_seed_ini_sections_and_keys(tmp_path: Path) -> None:
    ini = tmp_path / "config.ini"
    ini.write_text(
        "[database]\nurl = sqlite:///my-workflows.db\n\n"
        "[storage]\nartifacts_dir = /path/to/artifacts\n\n"
        "[run]\nignore_failure = false\n"
    )
    cfg = Config.from_ini(ini, environ={})
    assert cfg.db.url == "sqlite:///my-workflows.db"
    assert cfg.storage.artifacts_dir == Path("/path/to/artifacts")
    assert cfg.run.ignore_failure is False


def test_seed_environment_variables() -> None:
    cfg = Config.from_env(
        {"WTFLOW_DB_URL": "sqlite:///x.db", "WTFLOW_ARTIFACTS_DIR": "/a", "WTFLOW_IGNORE_FAILURE": "1"}
    )
    assert (cfg.db.url, cfg.storage.artifacts_dir, cfg.run.ignore_failure) == (
        "sqlite:///x.db",
        Path("/a"),
        True,
    )


def test_from_env_reads_the_process_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WTFLOW_MAX_PARALLEL", "3")
    assert Config.from_env().run.max_parallel == 3


def test_precedence_defaults_ini_environment_arguments(tmp_path: Path) -> None:
    ini = tmp_path / "c.ini"
    ini.write_text("[run]\nmax_parallel = 2\nkill_grace = 7\ntimeout = 30\n")
    env = {"WTFLOW_MAX_PARALLEL": "3", "WTFLOW_KILL_GRACE": "5"}
    cfg = Config.load(ini=ini, environ=env, overrides={"run.max_parallel": 4})
    assert cfg.run.max_parallel == 4  # argument beats environment
    assert cfg.run.kill_grace == 5  # environment beats INI
    assert cfg.run.timeout == 30  # INI beats default


def test_empty_db_url_switches_recording_off() -> None:
    cfg = Config.from_env({"WTFLOW_DB_URL": ""})
    assert cfg.db.resolved_url(Path("/s")) is None


def test_upstream_style_section_objects() -> None:
    cfg = Config(db=DatabaseConfig(url="sqlite:///t.db"), storage=StorageConfig(artifacts_dir=Path("/a")),
                 run=RunConfig(ignore_failure=True))  # fmt: skip
    assert cfg.run.ignore_failure
    assert cfg.db.url == "sqlite:///t.db"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {"WTFLOW_IGNORE_FAILURE": "maybe"},
            "^WTFLOW_IGNORE_FAILURE='maybe' is not a boolean; use one of 0, 1, true, false$",
        ),
        ({"WTFLOW_IGNORE_FAILURE": "yes"}, "^WTFLOW_IGNORE_FAILURE='yes' is not a boolean"),
        ({"WTFLOW_MAX_PARALLEL": "-3"}, r"^WTFLOW_MAX_PARALLEL='-3' is not a whole number >= 1; use e.g. 8$"),
        ({"WTFLOW_MAX_PARALLEL": "many"}, r"^WTFLOW_MAX_PARALLEL='many' is not a whole number >= 1"),
        ({"WTFLOW_KILL_GRACE": "soon"}, r"^WTFLOW_KILL_GRACE='soon' is not a number of seconds >= 0"),
        ({"WTFLOW_TIMEOUT": "-1"}, r"^WTFLOW_TIMEOUT='-1' is not a number of seconds >= 0"),
        (
            {"WTFLOW_CONSOLE": "fancy"},
            r"^WTFLOW_CONSOLE='fancy' is not a console mode; use one of raw, plain, live, quiet$",
        ),
    ],
)
def test_bad_environment_value_names_variable_value_and_fix(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        values_from_env(env)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "[run]\nignore_failure = maybe\n",
            r"^ci.ini: \[run\] ignore_failure='maybe' is not a boolean; use one of 0, 1, true, false$",
        ),
        ("[run]\nmax_parallel = -3\n", r"^ci.ini: \[run\] max_parallel='-3' is not a whole number >= 1"),
        (
            "[runner]\nx = 1\n",
            r"^ci.ini: unknown section \[runner\]; known sections: database, report, run, storage$",
        ),
        (
            "[run]\nignore_failures = 1\n",
            r"^ci.ini: unknown key 'ignore_failures' in \[run\]; known keys: ignore_failure, ",
        ),
        ("ignore_failure = 1\n", r"^ci.ini: not a valid INI file: "),
    ],
)
def test_bad_ini_names_file_section_key_value_and_fix(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        values_from_ini(text, filename="ci.ini")


def test_missing_ini_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"^config file '.*nope.ini' does not exist; check the path"):
        Config.from_ini(tmp_path / "nope.ini")


def test_unknown_override_is_rejected() -> None:
    with pytest.raises(ConfigError, match=r"^unknown setting 'run.paralel'"):
        Config.load(environ={}, overrides={"run.paralel": 1})


def test_describe_masks_the_database_password() -> None:
    cfg = Config.load(environ={"WTFLOW_DB_URL": "postgresql+psycopg://bob:s3cret@db/wtflow"})
    assert cfg.describe()["database.url"] == "postgresql+psycopg://bob:***@db/wtflow"
    assert "s3cret" not in repr(cfg.describe())
    assert mask_url("sqlite:///x.db") == "sqlite:///x.db"
