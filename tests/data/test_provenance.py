"""A run records where it came from: command line, wtfile and its SHA-256, git commit, branch, dirtiness."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

WTFILE = (
    "import wtflow\n\n@wtflow.workflow\ndef ci():\n    return wtflow.Node('ci', wtflow.Command('true'))\n"
)


def wtflow(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("WTFLOW_", "GIT_"))}
    environ.update(WTFLOW_DB_URL=f"sqlite:///{folder.parent / 'w.db'}", NO_COLOR="1")
    return subprocess.run([sys.executable, "-m", "wtflow", *args], cwd=folder, capture_output=True,
                          text=True, env=environ, timeout=60, check=True)  # fmt: skip


def git(folder: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(folder), "-c", "user.name=t", "-c", "user.email=t@t", *args],
                          capture_output=True, text=True, check=True, timeout=30).stdout.strip()  # fmt: skip


def test_outside_a_repository_git_is_absent(tmp_path: Path) -> None:
    folder = tmp_path / "proj"
    folder.mkdir()
    (folder / "wtfile.py").write_text(WTFILE)
    wtflow(folder, "run", "ci", "--only", "ci")
    origin = json.loads(wtflow(folder, "show", "--json").stdout)["provenance"]
    assert origin["command"][1:] == ["run", "ci", "--only", "ci"]
    assert origin["wtfile"] == str(folder / "wtfile.py")
    assert origin["wtfile_sha256"] == hashlib.sha256(WTFILE.encode()).hexdigest()
    assert origin["selection"] == {"workflows": ["ci"], "only": ["ci"]}
    assert origin["params"] == {}
    assert "wtflow_version" in origin
    assert "git" not in origin


def _repository(tmp_path: Path) -> Path:
    """A folder with a wtfile, made a git repository with nothing committed yet."""
    folder = tmp_path / "proj"
    folder.mkdir()
    (folder / "wtfile.py").write_text(WTFILE)
    git(folder, "init", "-q", "-b", "main")
    return folder


def _commit(folder: Path) -> str:
    git(folder, "add", "wtfile.py")
    git(folder, "commit", "-q", "-m", "first")
    return git(folder, "rev-parse", "HEAD")


def _recorded(folder: Path) -> dict[str, object]:
    """What a run in `folder` records of where it came from."""
    wtflow(folder, "run")
    provenance: dict[str, object] = json.loads(wtflow(folder, "show", "--json").stdout)["provenance"]
    return provenance


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_in_a_repository_the_commit_branch_and_dirtiness(tmp_path: Path) -> None:
    folder = _repository(tmp_path)
    commit = _commit(folder)
    assert _recorded(folder)["git"] == {"commit": commit, "branch": "main", "dirty": False}
    (folder / "wtfile.py").write_text(WTFILE + "# changed\n")
    assert _recorded(folder)["git"] == {"commit": commit, "branch": "main", "dirty": True}
    assert f"git     {commit} on main (dirty)" in wtflow(folder, "show").stdout


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_a_detached_head_and_a_repository_without_commits(tmp_path: Path) -> None:
    folder = _repository(tmp_path)
    assert "git" not in _recorded(folder)  # nothing committed yet
    commit = _commit(folder)
    git(folder, "checkout", "-q", "--detach")
    # The branch as `git rev-parse --abbrev-ref HEAD` names a detached one.
    assert _recorded(folder)["git"] == {"commit": commit, "branch": "HEAD", "dirty": False}
