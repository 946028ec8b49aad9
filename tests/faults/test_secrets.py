"""What wtflow keeps is its owner's alone, and Secret values never reach the record or the screen."""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import Collect, config, wf
from wtflow import Command, Config, Engine, Node, Secret

SECRET = "hunter2-Zq9xW"


@contextlib.contextmanager
def _umask(mask: int) -> Iterator[None]:
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


def _modes(top: Path) -> dict[str, int]:
    found = {".": stat.S_IMODE(top.lstat().st_mode)}
    for path in top.rglob("*"):
        if not path.is_symlink():
            found[str(path.relative_to(top))] = stat.S_IMODE(path.lstat().st_mode)
    return found


@pytest.mark.parametrize("mask", [0o022, 0o000])
def test_state_folder_and_every_artifact_are_owner_only_whatever_the_umask(tmp_path: Path, mask: int) -> None:
    node = Node(name="n", executable=Command("echo out; echo err >&2"), retries=1, retry_delay=0)
    with _umask(mask):
        assert Engine(wf(Node(name="group", children=[node])), config(tmp_path)).run() == 0
    modes = _modes(tmp_path / "state")
    assert len(modes) >= 8  # state, artifacts, workflow, run, root, group, n, stdout, stderr
    assert {name: mode for name, mode in modes.items() if mode & 0o077} == {}


def test_an_existing_state_folder_open_to_others_is_closed(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir(mode=0o755)
    state.chmod(0o755)
    assert Engine(wf(Node(name="n", executable=Command("true"))), config(tmp_path)).run() == 0
    assert stat.S_IMODE(state.stat().st_mode) == 0o700


def test_a_folder_of_the_users_given_as_state_folder_keeps_its_mode(tmp_path: Path) -> None:
    """`--state-dir .` or a shared sticky folder: closing it would take it from its other users."""
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o1777)
    (shared / "someone-elses").write_text("x")
    assert (
        Engine(
            wf(Node(name="n", executable=Command("true"))), config(tmp_path, storage__state_dir=shared)
        ).run()
        == 0
    )
    assert stat.S_IMODE(shared.stat().st_mode) == 0o1777


def test_a_chosen_artifacts_folder_keeps_its_mode_but_runs_inside_are_private(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o755)
    engine = Engine(
        wf(Node(name="n", executable=Command("true"))), config(tmp_path, storage__artifacts_dir=shared)
    )
    assert engine.run() == 0
    assert stat.S_IMODE(shared.stat().st_mode) == 0o755
    assert engine.run_dir is not None
    assert {k: m for k, m in _modes(engine.run_dir.parent).items() if m & 0o077} == {}


def test_secret_env_value_reaches_the_process_but_not_events_console_or_dry_run(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    def build() -> Node:
        return Node(
            name="deploy",
            executable=Command('[ "$TOKEN" = "$EXPECTED" ] && echo token-ok'),
            env={"TOKEN": Secret(SECRET), "EXPECTED": Secret(SECRET)},
        )

    events = Collect()
    node = build()
    engine = Engine(wf(node), config(tmp_path, run__console="plain"), listeners=[events])
    assert engine.run() == 0
    assert node.stdout_artifact.data == b"token-ok\n"
    assert Engine(wf(build()), config(tmp_path), dry_run=True).run() == 0
    shown = capfd.readouterr()
    assert "TOKEN=***" in shown.out  # the dry run says the variable is set, not to what
    assert SECRET not in shown.out + shown.err
    assert all(SECRET not in repr(e) for e in events.events)
    assert SECRET not in repr(node)


def test_secret_env_value_never_reaches_the_database_file(tmp_path: Path) -> None:
    pytest.importorskip("wtflow.db.recorder")
    db = tmp_path / "record.db"
    node = Node(name="deploy", executable=Command("true"), env={"TOKEN": Secret(SECRET)})
    assert Engine(wf(node), config(tmp_path, db__url=f"sqlite:///{db}")).run() == 0
    assert db.stat().st_size > 0
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert SECRET.encode() not in path.read_bytes(), path


@pytest.mark.parametrize(
    ("url", "masked"),
    [
        ("postgresql://ci:hunter2-Zq9xW@db.example/runs", "postgresql://ci:***@db.example/runs"),
        ("postgresql://ci:hunter2@Zq9xW@db/runs", "postgresql://ci:***@db/runs"),  # raw '@' in it
        ("postgresql+psycopg://ci:a:b/hunter2-Zq9xW@db:5432/r", "postgresql+psycopg://ci:***@db:5432/r"),
        (
            "postgresql://db/runs?user=ci&password=hunter2-Zq9xW&x=1",
            "postgresql://db/runs?user=ci&password=***&x=1",
        ),
        ("sqlite:///tmp/x.db", "sqlite:///tmp/x.db"),
    ],
)
def test_database_password_is_masked_in_the_recorded_settings_and_repr(url: str, masked: str) -> None:
    """Regression: a password with a raw '@', or one in the query, was shown in part or whole."""
    cfg = Config.load(environ={"WTFLOW_DB_URL": url})
    assert cfg.describe()["database.url"] == masked
    assert "hunter2" not in repr(cfg)
    assert "Zq9xW" not in repr(cfg)
