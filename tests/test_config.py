from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from wtflow import Config, ConfigError, DatabaseConfig, Node, RunConfig, StorageConfig
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


def test_an_in_memory_database_is_refused_from_every_source(tmp_path: Path) -> None:
    message = r"is an in-memory SQLite database, which keeps no record; use a file, e.g. sqlite:///wtflow.db"
    with pytest.raises(ConfigError, match=r"^WTFLOW_DB_URL='sqlite://' " + message):
        values_from_env({"WTFLOW_DB_URL": "sqlite://"})
    with pytest.raises(ConfigError, match=r"^ci.ini: \[database\] url='sqlite:///:memory:' " + message):
        values_from_ini("[database]\nurl = sqlite:///:memory:\n", filename="ci.ini")
    with pytest.raises(ConfigError, match=r"^database.url='sqlite\+pysqlite://' " + message):
        Config.load(overrides={"database.url": "sqlite+pysqlite://"})
    assert Config.load(overrides={"database.url": "sqlite:///memory.db"}).db.url == "sqlite:///memory.db"


@pytest.mark.parametrize("raw", ["0", "0.0", "1e-400", "none", ""])
def test_a_zero_time_limit_is_no_limit_however_it_is_written(raw: str) -> None:
    """Not a limit that times every node out at once."""
    values = values_from_env({"WTFLOW_TIMEOUT": raw, "WTFLOW_DEADLINE": raw})
    assert (values.get("run.timeout"), values.get("run.deadline")) == (None, None)


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
            "^WTFLOW_IGNORE_FAILURE='maybe' is not a boolean; use one of 0, 1, true, false, yes, no, on, off$",
        ),
        ({"WTFLOW_IGNORE_FAILURE": "y"}, "^WTFLOW_IGNORE_FAILURE='y' is not a boolean"),
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
            r"^ci.ini: \[run\] ignore_failure='maybe' is not a boolean; use one of 0, 1, true, false, yes",
        ),
        ("[run]\nmax_parallel = -3\n", r"^ci.ini: \[run\] max_parallel='-3' is not a whole number >= 1"),
        (
            "[runner]\nx = 1\n",
            r"^ci.ini: unknown section \[runner\]; known sections: database, report, run, storage$",
        ),
        (
            "[DEFAULT]\nmax_parallel = 2\n[run]\nfail_fast = 1\n",
            r"^ci.ini: unknown section \[DEFAULT\]; known sections: database, report, run, storage$",
        ),
        (
            "[run]\nignore_failures = 1\n",
            r"^ci.ini: unknown key 'ignore_failures' in \[run\]; known keys: ignore_failure, ",
        ),
        (
            "ignore_failure = 1\n",
            r"^ci.ini:1: not a valid INI file: 'ignore_failure = 1' comes before any \[section\]",
        ),
        (
            "[run]\nmax_parallel = 2\n[storage\n",
            r"^ci.ini:3: not a valid INI file: .\[storage. is not `key = value`$",
        ),
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


@pytest.mark.parametrize(("raw", "value"), [("yes", True), ("On", True), ("no", False), ("OFF", False)])
def test_booleans_also_take_yes_no_on_off(raw: str, value: bool) -> None:
    assert Config.from_env({"WTFLOW_IGNORE_FAILURE": raw}).run.ignore_failure is value


def test_ini_values_may_carry_inline_comments(tmp_path: Path) -> None:
    ini = tmp_path / "c.ini"
    ini.write_text("[run]\n# why\nmax_parallel = 3  ; three is enough\nignore_failure = yes # for CI\n")
    cfg = Config.from_ini(ini, environ={})
    assert (cfg.run.max_parallel, cfg.run.ignore_failure) == (3, True)


def test_from_ini_takes_ini_path_as_older_wtflow_did(tmp_path: Path) -> None:
    ini = tmp_path / "c.ini"
    ini.write_text("[run]\nmax_parallel = 5\n")
    assert Config.from_ini(ini_path=ini, environ={}).run.max_parallel == 5
    with pytest.raises(ConfigError, match=r"takes one INI file"):
        Config.from_ini()


def test_each_section_reads_its_own_environment_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WTFLOW_DB_URL", "sqlite:///e.db")
    monkeypatch.setenv("WTFLOW_ARTIFACTS_DIR", "/arts")
    monkeypatch.setenv("WTFLOW_IGNORE_FAILURE", "true")
    assert DatabaseConfig.from_env() == DatabaseConfig(url="sqlite:///e.db")
    assert StorageConfig.from_env().artifacts_dir == Path("/arts")
    assert RunConfig.from_env({"WTFLOW_MAX_PARALLEL": "2"}).max_parallel == 2
    assert RunConfig.from_env().ignore_failure is True


def test_one_spelling_of_each_setting_in_overrides_describe_and_the_table(tmp_path: Path) -> None:
    """Regression test: overrides took 'db.url' while describe() and the docs said 'database.url'."""
    from wtflow.config import SETTINGS

    names = [s.name for s in SETTINGS]
    cfg = Config.load(environ={}, overrides={"database.url": "sqlite:///o.db", "storage.state_dir": tmp_path})
    assert list(cfg.describe()) == names
    assert cfg.describe()["database.url"] == "sqlite:///o.db"
    assert Config.load(environ={}, overrides={"db.url": "sqlite:///old.db"}).db.url == "sqlite:///old.db"
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    for s in SETTINGS:
        assert f"`[{s.section}] {s.key}`" in readme, s.name
    with pytest.raises(
        ConfigError, match=r"unknown setting 'run.max_paralel'; did you mean 'run.max_parallel'\?"
    ):
        Config.load(environ={}, overrides={"run.max_paralel": 2})


def test_every_value_keeps_where_it_came_from(tmp_path: Path) -> None:
    ini = tmp_path / "c.ini"
    ini.write_text("[run]\n\nmax_parallel = 2\nkill_grace = 7\n[storage]\nstate_dir = s\n")
    cfg = Config.load(ini=ini, environ={"WTFLOW_KILL_GRACE": "5"}, overrides={"run.timeout": 9})
    assert {
        k: cfg.source(k) for k in ("run.max_parallel", "run.kill_grace", "run.timeout", "storage.state_dir")
    } == {
        "run.max_parallel": f"{ini}:3",
        "run.kill_grace": "WTFLOW_KILL_GRACE",
        "run.timeout": "argument",
        "storage.state_dir": f"{ini}:6",
    }
    assert cfg.source("run.console") == "default"


def test_unknown_variable_warns_with_the_closest_name_and_internal_ones_do_not() -> None:
    from wtflow.config import unknown_variables

    environ = {
        "WTFLOW_MAX_PARALEL": "2", "WTFLOW_RUN_ID": "x", "WTFLOW_NODE": "a/b", "WTFLOW_ATTEMPT": "1",
        "WTFLOW_ARTIFACTS": "/a", "WTFLOW_PROCESS_TOKENS": "t", "WTFLOW_DEBUG": "1",
        "WTFLOW_PARAM_ENV": "prod", "WTFLOW_MAX_PARALLEL": "3", "HOME": "/root",
    }  # fmt: skip
    assert unknown_variables(environ) == [
        "WTFLOW_MAX_PARALEL is not a wtflow setting and is ignored; did you mean WTFLOW_MAX_PARALLEL?"
    ]


def test_duplicate_workflow_name_is_also_a_runtime_error() -> None:
    from wtflow import WtfileError, discover

    def tree() -> Node:
        return Node("root")

    discover.workflow(name="twice")(tree)
    with pytest.raises(RuntimeError) as e:
        discover.workflow(name="twice")(tree)
    assert isinstance(e.value, WtfileError)


def test_flags_come_from_ini_environment_and_arguments_the_last_winning(tmp_path: Path) -> None:
    ini = tmp_path / "ci.ini"
    ini.write_text("[run]\nflags = deploy, slow  ; feature flags\n")
    assert Config.load(ini=ini, environ={}).run.flags == ("deploy", "slow")
    assert Config.load(ini=ini, environ={"WTFLOW_FLAGS": "b,a,,a"}).run.flags == ("a", "b")
    cfg = Config.load(ini=ini, environ={"WTFLOW_FLAGS": "a"}, overrides={"run.flags": ["canary"]})
    assert (cfg.run.flags, cfg.source("run.flags")) == (("canary",), "argument")
    assert Config.load(environ={}).run.flags == ()
    assert Config.load(environ={}).describe()["run.flags"] == ()


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ({"environ": {"WTFLOW_FLAGS": "deploy,two words"}},
         "WTFLOW_FLAGS='deploy,two words' is not a list of flag names ('two words' is not a word); use comma-separated words, e.g. deploy, slow"),
        ({"overrides": {"run.flags": 3}},
         "run.flags=3 is not a list of flag names; use e.g. ('deploy', 'slow')"),
    ],
)  # fmt: skip
def test_a_bad_flag_names_its_source_value_and_fix(given: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as e:
        Config.load(**{"environ": {}, **given})
    assert str(e.value) == message
