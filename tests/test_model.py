from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import wtflow
from wtflow import Command, Node, PyFunc, Secret, Workflow, WorkflowError, WtflowError


def test_public_names_match_the_seed_readme() -> None:
    for name in ("Node", "Workflow", "Command", "PyFunc", "Artifact", "Engine", "Config", "workflow"):
        assert hasattr(wtflow, name)


def test_node_has_stream_artifacts() -> None:
    node = Node(name="n", executable=Command("echo hi"))
    assert (node.stdout_artifact.name, node.stderr_artifact.name) == ("stdout", "stderr")
    assert node.retcode is None
    assert node.status == "pending"


def test_artifact_read_before_its_node_ran_says_so() -> None:
    node = Node(name="n1", executable=Command("echo hi"))
    with pytest.raises(WtflowError, match=r"the stdout of node 'n1' has not been produced yet"):
        _ = node.stdout_artifact.data


@pytest.mark.parametrize("name", ["", "  ", "../x", "/etc", "a/b", "..", ".", "nul\0byte", "x" * 300])
def test_bad_node_names_are_rejected_with_the_name(name: str) -> None:
    with pytest.raises(WorkflowError, match="node name"):
        Node(name=name)


def test_same_node_object_twice_is_rejected() -> None:
    shared = Node(name="shared", executable=Command("true"))
    with pytest.raises(
        WorkflowError, match=r"node 'shared' is placed twice \(at root/a/shared and root/b/shared\)"
    ):
        Workflow(
            name="w",
            root=Node(
                name="root", children=[Node(name="a", children=[shared]), Node(name="b", children=[shared])]
            ),
        )


def test_same_named_siblings_each_get_their_own_folder_in_the_path() -> None:
    """Siblings may share a name; the second and later get `-2`, `-3`, ... folders, skipping
    any number a real sibling already has."""
    kids = [Node(name="twin"), Node(name="twin"), Node(name="twin-2"), Node(name="twin")]
    wf = Workflow(name="w", root=Node(name="root", children=kids))
    assert [p.path_str for p in wf.placed[1:]] == ["root/twin", "root/twin-3", "root/twin-2", "root/twin-4"]
    assert [p.node.name for p in wf.placed[1:]] == ["twin", "twin", "twin-2", "twin"]


def test_copies_of_a_name_never_take_a_reserved_folder() -> None:
    wf = Workflow(name="w", root=Node(name="root", children=[Node(name="attempt"), Node(name="attempt")]))
    assert [p.path[-1] for p in wf.placed[1:]] == ["attempt", "attempt_2"]


@pytest.mark.parametrize("name", ["stdout", "stderr", "attempt-2"])
def test_child_names_of_artifact_files_are_reserved(name: str) -> None:
    with pytest.raises(WorkflowError, match="reserved"):
        Workflow(name="w", root=Node(name="root", children=[Node(name=name)]))


@pytest.mark.parametrize("timeout", [0, -1, True, "10", float("nan")])
def test_bad_timeouts_are_rejected(timeout: object) -> None:
    with pytest.raises(WorkflowError, match=r"timeout=.* is not a positive number of seconds"):
        Command("true", timeout=timeout)  # type: ignore[arg-type]


def test_empty_command_and_bad_executables_are_rejected() -> None:
    with pytest.raises(WorkflowError, match=r"Command\(cmd=''\) has nothing to run"):
        Command("")
    with pytest.raises(WorkflowError, match="is not a shell string or a non-empty list"):
        Command([])
    with pytest.raises(WorkflowError, match="is not a Command or a PyFunc"):
        Node(name="n", executable="echo hi")  # type: ignore[arg-type]
    with pytest.raises(WorkflowError, match="is not callable"):
        PyFunc(func=42)  # type: ignore[arg-type]
    with pytest.raises(WorkflowError, match="is not a Node"):
        Node(name="n", children=["x"])  # type: ignore[list-item]
    with pytest.raises(WorkflowError, match="retries=-1"):
        Node(name="n", retries=-1)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"env": {"A=B": "1"}}, "node 'n': env name 'A=B' cannot name an environment variable"),
        ({"env": {"": "1"}}, "node 'n': env name '' cannot name an environment variable"),
        ({"env": {"A\0": "1"}}, "node 'n': env name 'A\\x00' cannot name an environment variable"),
        ({"env": {"A": "x\0y"}}, "node 'n': env A='x\\x00y' holds a NUL byte"),
        ({"env": [("A", "1")]}, "node 'n': env must map str to str"),
        ({"cwd": "/tmp\0x"}, "node 'n': cwd='/tmp\\x00x' is not a folder path"),
        ({"cwd": 5}, "node 'n': cwd=5 is not a folder path"),
    ],
)  # fmt: skip
def test_env_and_cwd_the_os_would_refuse_are_refused_when_the_node_is_made(
    options: dict[str, object], message: str
) -> None:
    with pytest.raises(WorkflowError) as e:
        Node(name="n", executable=Command("true"), **options)  # type: ignore[arg-type]
    assert str(e.value).startswith(message)


@pytest.mark.parametrize("cmd", ["echo a\0b", ["echo", "a\0b"]])
def test_a_command_holding_nul_is_refused_when_it_is_made(cmd: str | list[str]) -> None:
    with pytest.raises(WorkflowError, match=r"holds a NUL byte, which no command line can carry"):
        Command(cmd)


@pytest.mark.parametrize(
    ("name", "message"),
    [
        (5, "node name 5 is not a string; give it a name, e.g. name='build'"),
        ("a\udcff", "node name 'a\\udcff' is not valid text (it holds a lone surrogate); "
                     "use a name such as 'build'"),
    ],
)  # fmt: skip
def test_a_name_that_is_not_text_says_so(name: object, message: str) -> None:
    with pytest.raises(WorkflowError) as e:
        Node(name=name)  # type: ignore[arg-type]
    assert str(e.value) == message
    with pytest.raises(WorkflowError) as e:
        Workflow(name=name, root=Node(name="r"))  # type: ignore[arg-type]
    assert str(e.value) == message.replace("node", "workflow").replace("'build'", "'ci'")


def test_empty_workflow_name_is_rejected() -> None:
    with pytest.raises(WorkflowError, match="workflow name '' is empty"):
        Workflow(name="", root=Node(name="r"))


def test_render_masks_secret_env_values() -> None:
    node = Node(
        name="deploy", executable=Command(["deploy", "--prod"]), env={"TOKEN": Secret("hunter2"), "X": "1"}
    )
    text = Workflow(name="w", root=node).render()
    assert "hunter2" not in text
    assert "env: TOKEN=*** X=1" in text


def _report(artifact: wtflow.Artifact, *, limit: int) -> None:
    del artifact, limit


def test_render_prints_commands_as_typed_in_a_shell_and_calls_by_name() -> None:
    """--dry-run shows what you would type, never a Python repr."""
    build = Node(name="build", executable=Command(["pytest", "-k", "not slow"]), cwd="my dir")
    shell = Node(name="shell", executable=Command("make all | tee log"), env={"A": "x y"})
    call = Node(
        name="call", executable=PyFunc(func=_report, args=(build.stdout_artifact,), kwargs={"limit": 3})
    )
    text = Workflow(name="w", root=Node(name="root", children=[build, shell, call])).render()
    assert text == (
        "Workflow: w\n"
        "- root\n"
        "  - build\n"
        "      cwd: 'my dir'\n"
        "      $ pytest -k 'not slow'\n"
        "  - shell\n"
        "      env: A='x y'\n"
        "      $ make all | tee log\n"
        "  - call\n"
        "      call: tests.test_model._report(<stdout of 'build'>, limit=3)\n"
        "      artifacts: result (result.json)\n"
    )


def test_render_names_the_folder_of_a_same_named_sibling() -> None:
    wf = Workflow(name="w", root=Node(name="root", children=[Node(name="twin"), Node(name="twin")]))
    assert wf.render().splitlines()[-1] == "  - twin  [folder twin-2]"


def test_declared_artifacts_are_kept_and_stream_names_refused() -> None:
    report = wtflow.Artifact("report", file_path="out/report.json")
    node = Node(name="n", executable=Command("true"), artifacts=[report])
    assert node.artifacts == [report]
    assert (report.path, report.node_name, report.owner) == (Path("out/report.json"), "n", node)
    for name in ("stdout", "stderr", "result"):
        with pytest.raises(
            ValueError, match=r"^`stdout`, `stderr` and `result` are reserved artifact names$"
        ):
            Node(name="n", artifacts=[wtflow.Artifact(name)])
    with pytest.raises(WorkflowError, match=r"node 'n': two artifacts are named 'a'"):
        Node(name="n", artifacts=[wtflow.Artifact("a"), wtflow.Artifact("a")])
    with pytest.raises(WorkflowError, match=r"artifacts='x' is not a list of Artifacts"):
        Node(name="n", artifacts="x")  # type: ignore[arg-type]


def test_imports_keep_the_layers_of_the_design() -> None:
    """The import-linter contracts in pyproject.toml hold: imports run down the layers, the core
    (model, config, status, errors, events) does no I/O, the engine knows no SQL, terminal or pid.
    pre-commit runs the same check; this keeps `uv run pytest` a whole answer."""
    done = subprocess.run(
        [Path(sys.executable).parent / "lint-imports", "--no-cache", "--no-logo"],
        cwd=Path(__file__).parents[1], capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout


def test_a_wtfile_function_may_return_the_root_node_or_a_whole_workflow() -> None:
    from wtflow import discover

    @discover.workflow("as-node")
    def as_node() -> Node:
        return Node("root", Command("true"))

    @discover.workflow("as-workflow")
    def as_workflow() -> Workflow:
        return Workflow(name="named inside", root=Node("top", Command("true")))

    @discover.workflow
    def named_inside() -> Workflow:
        return Workflow(name="named inside", root=Node("top", Command("true")))

    assert discover.REGISTRY["as-node"].build().name == "as-node"
    built = discover.REGISTRY["as-workflow"].build()
    assert (built.name, built.root.name) == ("as-workflow", "top")  # the decorator's name wins
    assert discover.REGISTRY["named-inside"].build().name == "named inside"


def _ready(run: object) -> bool:
    return True


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"when": "yes"}, "node 'n': when='yes' is neither True/False nor a callable; "
                          "use e.g. when=lambda run: 'deploy' in run.flags"),
        ({"when": lambda: True}, "node 'n': when=tests.test_model.<lambda> "
                                 "cannot be called with one argument (the run so far); "
                                 "use e.g. when=lambda run: run.status(build) == 'succeeded'"),
        ({"tags": "slow"}, "node 'n': tags='slow' is not a set of tags; use e.g. tags={'slow', 'db'}"),
        ({"tags": {"slow", 3}}, "node 'n': tag 3 is not a tag; use a plain word such as 'slow' or 'db' "
                                "(letters, digits and _ . : + -)"),
        ({"tags": ["two words"]}, "node 'n': tag 'two words' is not a tag; use a plain word such as 'slow' "
                                  "or 'db' (letters, digits and _ . : + -)"),
        ({"priority": 1.5}, "node 'n': priority=1.5 is not a whole number; use e.g. priority=10 "
                            "(higher starts first when more nodes are ready than slots)"),
        ({"priority": True}, "node 'n': priority=True is not a whole number; use e.g. priority=10 "
                             "(higher starts first when more nodes are ready than slots)"),
    ],
)  # fmt: skip
def test_model_when_priority_and_tags_are_checked(options: dict[str, object], message: str) -> None:
    with pytest.raises(WorkflowError) as e:
        Node(name="n", **options)  # type: ignore[arg-type]
    assert str(e.value) == message


def test_tags_are_kept_as_a_set_and_dry_run_shows_decisions() -> None:
    node = Node(name="deploy", executable=Command("make deploy"), tags=["prod", "slow", "prod"],
                priority=5, when=_ready)  # fmt: skip
    assert node.tags == frozenset({"prod", "slow"})
    skipped = Node(name="docs", executable=Command("make docs"), when=False)
    text = Workflow(name="w", root=Node(name="root", children=[node, skipped])).render()
    assert text == (
        "Workflow: w\n- root\n"
        "  - deploy  [priority=5, tags=prod,slow]\n      when: tests.test_model._ready\n      $ make deploy\n"
        "  - docs\n      when: False\n      $ make docs\n"
    )
