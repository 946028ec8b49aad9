"""Bad settings and bad workflows: one line that names the thing, the value and the fix; nothing runs.

The CLI's own bad-input cases (unknown workflow, run id, flags) live with the CLI tests.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import config
from wtflow import Command, Config, ConfigError, Engine, Node, PyFunc, Workflow, WorkflowError
from wtflow.config import SETTINGS


def _one_line(e: pytest.ExceptionInfo[Exception]) -> str:
    text = str(e.value)
    assert "\n" not in text
    assert len(text) < 400
    return text


# -- settings ------------------------------------------------------------------------------

BAD_ENV = {
    "WTFLOW_IGNORE_FAILURE": ["maybe", "y", "2", "", "tru e"],
    "WTFLOW_FAIL_FAST": ["maybe", "2"],
    "WTFLOW_MAX_PARALLEL": ["0", "-4", "eight", "1.5", "", "1e3"],
    "WTFLOW_KILL_GRACE": ["-1", "soon", "nan", "inf", ""],
    "WTFLOW_TIMEOUT": ["-5", "forever", "nan", "inf"],
    "WTFLOW_DEADLINE": ["-5", "soon"],
    "WTFLOW_CONSOLE": ["fancy", "", "raw\nplain"],
    "WTFLOW_CI": ["jenkins", "", "GitHub Actions"],
    "WTFLOW_EXECUTOR": ["dask", "", "scheduler:8786", "tcp://", "http://x:8786"],
    "WTFLOW_KEEP_RUNS": ["0", "-1", "ten", "2.5"],
}


def test_every_variable_that_can_be_wrong_is_tested() -> None:
    free_text = {
        "WTFLOW_DB_URL",
        "WTFLOW_ARTIFACTS_DIR",
        "WTFLOW_STATE_DIR",
        "WTFLOW_JUNIT_XML",
        "WTFLOW_EVENTS",
        "WTFLOW_REPORT",
    }
    assert set(BAD_ENV) == {s.env for s in SETTINGS} - free_text


@pytest.mark.parametrize(("var", "raw"), [(var, raw) for var, raws in BAD_ENV.items() for raw in raws])
def test_bad_environment_value_names_variable_value_and_fix(var: str, raw: str) -> None:
    with pytest.raises(ConfigError) as e:
        Config.from_env({var: raw})
    assert _one_line(e).startswith(f"{var}={raw!r} is not ")
    assert "; use " in str(e.value)


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("run.max_parallel", -1),
        ("run.max_parallel", 0),
        ("run.max_parallel", 2.5),
        ("run.max_parallel", True),
        ("run.kill_grace", -0.1),
        ("run.kill_grace", float("nan")),
        ("run.kill_grace", "later"),
        ("run.timeout", 0),
        ("run.timeout", -3),
        ("run.timeout", [30]),
        ("run.ignore_failure", "maybe"),
        ("run.ignore_failure", 1),
        ("run.console", 3),
        ("report.ci", 3),
        ("report.junit_xml", 42),
        ("storage.state_dir", 42),
        ("storage.artifacts_dir", ["a"]),
        ("db.url", 5),
        ("storage.keep_runs", 0),
        ("storage.keep_runs", True),
        ("storage.keep_runs", "many"),
    ],
)
def test_bad_override_is_rejected_before_anything_runs(tmp_path: Path, key: str, value: Any) -> None:
    """Regression: overrides were taken as given, so `run.max_parallel=-1` failed mid-run inside
    asyncio and a `str` state dir crashed with AttributeError."""
    with pytest.raises(ConfigError) as e:
        Config.load(environ={}, overrides={key: value})
    assert _one_line(e).startswith(f"{key}={value!r} is not ")
    assert "; use " in str(e.value)


def test_overrides_given_as_text_are_parsed_like_the_environment(tmp_path: Path) -> None:
    cfg = Config.load(
        environ={},
        overrides={"storage.state_dir": str(tmp_path), "run.max_parallel": "3", "run.ignore_failure": "true"},
    )
    assert (cfg.storage.state_dir, cfg.run.max_parallel, cfg.run.ignore_failure) == (tmp_path, 3, True)


def test_section_objects_built_by_hand_are_checked_too() -> None:
    from wtflow import RunConfig

    with pytest.raises(ConfigError, match=r"^run.max_parallel=-2 is not a whole number >= 1; use e.g. 8$"):
        RunConfig(max_parallel=-2)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("max_parallel = 3\n", r":1: not a valid INI file: 'max_parallel = 3' comes before any \[section\]"),
        (
            "[run]\nmax_parallel = 3\nmax_parallel = 4\n",
            r":3: not a valid INI file: key 'max_parallel' appears twice in \[run\]",
        ),
        ("[runs]\nmax_parallel = 3\n", r"unknown section \[runs\]; known sections: "),
        ("[run]\nparallel = 3\n", r"unknown key 'parallel' in \[run\]; known keys: "),
        ("[run]\nmax_parallel = -3\n", r"\[run\] max_parallel='-3' is not a whole number >= 1; use e.g. 8"),
        ("[run]\nignore_failure = maybe\n", r"\[run\] ignore_failure='maybe' is not a boolean"),
        (
            "[storage]\nkeep_runs = 0\n",
            r"\[storage\] keep_runs='0' is not a whole number >= 1; use e.g. 20, or none",
        ),
    ],
)
def test_bad_ini_names_file_section_key_and_value(tmp_path: Path, text: str, expected: str) -> None:
    ini = tmp_path / "ci.ini"
    ini.write_text(text)
    with pytest.raises(ConfigError) as e:
        Config.from_ini(ini, environ={})
    assert _one_line(e).startswith((f"{ini}: ", f"{ini}:1: ", f"{ini}:3: "))
    assert e.match(expected)


@pytest.mark.parametrize("kind", ["missing", "directory", "binary", "unreadable"])
def test_unreadable_ini_says_which_file_and_why(tmp_path: Path, kind: str) -> None:
    ini = tmp_path / "ci.ini"
    if kind == "directory":
        ini.mkdir()
    elif kind == "binary":
        ini.write_bytes(b"\xff\xfe\x00[run]")
    elif kind == "unreadable":
        if os.geteuid() == 0:
            pytest.skip("root reads any file")
        ini.write_text("[run]\n")
        ini.chmod(0)
    with pytest.raises(ConfigError) as e:
        Config.from_ini(ini, environ={})
    assert _one_line(e).startswith(f"config file {str(ini)!r} ")


# -- workflows -----------------------------------------------------------------------------

HOSTILE = [
    ("../x", "contains '/'"),
    ("..", "relative path component"),
    (".", "relative path component"),
    ("a/b", "contains '/'"),
    ("a\\b", "contains '/'"),
    ("nul\0byte", "NUL"),
    ("new\nline", "control character"),
    ("carriage\rreturn", "control character"),
    ("\x1b[31mred", "control character"),
    ("x" * 5000, "5000 bytes long"),
    ("é" * 150, "300 bytes long"),
    ("", "is empty"),
    ("   ", "is empty"),
]


@pytest.mark.parametrize(("name", "problem"), HOSTILE, ids=lambda v: repr(v)[:20])
def test_hostile_node_name_is_refused_in_one_line(name: str, problem: str) -> None:
    with pytest.raises(WorkflowError) as e:
        Node(name=name, executable=Command("true"))
    text = _one_line(e)
    assert text.startswith("node name ")
    assert problem in text
    assert "; use a plain name such as 'unit-tests'" in text or "give it a name" in text


@pytest.mark.parametrize(
    ("name", "problem"),
    [h for h in HOSTILE if "/" not in h[1] and "relative" not in h[1]],
    ids=lambda v: repr(v)[:20],
)
def test_hostile_workflow_name_is_refused_in_one_line(name: str, problem: str) -> None:
    with pytest.raises(WorkflowError) as e:
        Workflow(name=name, root=Node(name="n"))
    assert _one_line(e).startswith("workflow name ")
    assert problem in str(e.value)


@pytest.mark.parametrize("name", ["../x", "a/b", "a\\b", "..", ".", "../../etc", "/etc/passwd"])
def test_path_like_workflow_names_stay_inside_the_artifacts_folder(tmp_path: Path, name: str) -> None:
    engine = Engine(Workflow(name=name, root=Node(name="n", executable=Command("true"))), config(tmp_path))
    assert engine.run() == 0
    assert engine.run_dir is not None
    assert engine.run_dir.resolve().parent.parent == (tmp_path / "state" / "artifacts").resolve()


def test_a_name_changed_after_the_node_was_built_is_still_checked() -> None:
    node = Node(name="fine", executable=Command("true"))
    node.name = "../../escape"
    with pytest.raises(WorkflowError, match=r"^node name '../../escape' contains '/'"):
        Workflow(name="wf", root=Node(name="root", children=[node]))


def test_the_same_node_twice_names_both_places() -> None:
    shared = Node(name="shared", executable=Command("true"))
    with pytest.raises(WorkflowError) as e:
        Workflow(name="wf", root=Node(name="root", children=[Node(name="a", children=[shared]), shared]))
    assert _one_line(e) == (
        "workflow 'wf': node 'shared' is placed twice (at root/a/shared and root/shared); "
        "create a separate Node for each place"
    )


@pytest.mark.parametrize(
    ("build", "expected"),
    [  # the type: ignores mark the wrong types these cases pass on purpose
        (
            lambda: Node(name="n", executable="make"),  # type: ignore[arg-type]
            r"^node 'n': executable='make' is not a Command or a PyFunc",
        ),
        (lambda: Node(name="n", executable=print), r"is not a Command or a PyFunc; wrap it"),  # type: ignore[arg-type]
        (lambda: Node(name="n", children=["x"]), r"^node 'n': child 'x' is not a Node"),  # type: ignore[list-item]
        (lambda: Node(name="n", retries=-1), r"^node 'n': retries=-1 is not a whole number >= 0"),
        (lambda: Node(name="n", timeout=0), r"^Node\('n'\).timeout=0 is not a positive number"),
        (lambda: Command(""), r"^Command\(cmd=''\) has nothing to run"),
        (lambda: Command([]), r"is not a shell string or a non-empty list"),
        (lambda: Command("x", timeout=True), r"^Command.timeout=True is not a positive number"),
        (lambda: PyFunc(func="build"), r"^PyFunc\(func='build'\) is not callable"),  # type: ignore[arg-type]
        (lambda: Workflow(name="w", root="root"), r"^workflow 'w': root='root' is not a Node"),  # type: ignore[arg-type]
    ],
)
def test_bad_workflow_shape_is_one_line_naming_the_thing(build: Any, expected: str) -> None:
    with pytest.raises(WorkflowError) as e:
        build()
    _one_line(e)
    assert e.match(expected)


def test_a_very_long_value_is_cut_short_in_the_message() -> None:
    with pytest.raises(WorkflowError) as e:
        Node(name="y" * 100_000)
    assert len(str(e.value)) < 300


def test_deep_tree_of_long_names_reports_the_path_instead_of_crashing(tmp_path: Path) -> None:
    """Each name is legal, but together they pass PATH_MAX: the node still runs, and the run
    says which output could not be kept and why."""
    leaf = Node(name="leaf", executable=Command("echo deep"))
    node = leaf
    for i in range(25):
        node = Node(name=f"{i:03d}" + "d" * 197, children=[node])
    engine = Engine(Workflow(name="deep", root=node), config(tmp_path))
    assert engine.run() == 0
    assert leaf.stdout_artifact.path.name == "stdout"
    assert engine.problems
    assert all("\n" not in p for p in engine.problems)
    assert "File name too long" in engine.problems[0]
