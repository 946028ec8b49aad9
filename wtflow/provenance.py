"""Where a run came from, for its record: the command line, the wtfile and its SHA-256, the git
commit, branch and dirtiness of the wtfile's repository, the selection and the wtflow version.

`Provenance.start` launches the git query at once and `collect` reads it later, so it runs
while the workflows are built; no git, or no repository, simply leaves those fields out.
"""

from __future__ import annotations

import contextlib
import hashlib
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from wtflow._version import __version__

GIT_TIMEOUT = 2.0  # seconds; a hung git (a network filesystem, a lock) must not hold up a run
# One process says all three: "# branch.oid <commit>", "# branch.head <branch>", then a line per
# changed tracked file. No optional locks: a run must not take the index lock from a `git commit`.
_QUERY = ["--no-optional-locks", "status", "--porcelain=v2", "--branch", "--untracked-files=no"]


class Provenance:
    """The git query under way for one wtfile, and what is known without it."""

    def __init__(self, wtfile: Path, argv: Sequence[str]) -> None:
        self.base: dict[str, Any] = {"command": list(argv), "wtflow_version": __version__}
        self._proc: subprocess.Popen[str] | None = None
        files = [wtfile] if wtfile.is_file() else sorted(wtfile.rglob("*wtfile*.py"))
        if files:
            self.base["wtfile"] = str(files[0].absolute()) if wtfile.is_file() else str(wtfile.absolute())
            self.base["wtfile_sha256"] = _digest(files) if files else None
        folder = wtfile if wtfile.is_dir() else wtfile.parent
        with contextlib.suppress(OSError):  # no git installed
            self._proc = subprocess.Popen(
                ["git", "-C", str(folder.absolute()), *_QUERY], stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
            )  # fmt: skip

    @classmethod
    def start(cls, wtfile: Path, argv: Sequence[str]) -> Provenance:
        return cls(wtfile, argv)

    def close(self) -> None:
        """Stop and reap the git query (its answer is no longer wanted)."""
        proc, self._proc = self._proc, None
        if proc is not None:
            with contextlib.suppress(OSError):
                proc.kill()
            proc.communicate()

    def collect(self, **more: Any) -> dict[str, Any]:
        """Everything known, with `more` (parameters, selection); git's answers if it gave them."""
        found = {**self.base, **more}
        proc, self._proc = self._proc, None
        if proc is None:
            return found
        try:
            out, _ = proc.communicate(timeout=GIT_TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.communicate(timeout=GIT_TIMEOUT)
            return found
        git = _status(out) if proc.returncode == 0 else None
        if git is not None:
            found["git"] = git
        return found


def _status(out: str) -> dict[str, Any] | None:
    """Commit, branch (HEAD when detached, as `git rev-parse --abbrev-ref HEAD` says) and
    dirtiness from `git status --porcelain=v2 --branch`; None before the first commit."""
    headers = dict(line[2:].partition(" ")[::2] for line in out.splitlines() if line.startswith("# "))
    commit = headers.get("branch.oid", "(initial)")
    if commit == "(initial)":
        return None
    branch = headers.get("branch.head", "HEAD")
    return {
        "commit": commit,
        "branch": "HEAD" if branch == "(detached)" else branch,
        "dirty": any(line and not line.startswith("#") for line in out.splitlines()),
    }


def _digest(files: Sequence[Path]) -> str:
    # One wtfile: its own SHA-256 (what `sha256sum wtfile.py` prints); a folder: of each in order.
    if len(files) == 1:
        return hashlib.sha256(files[0].read_bytes()).hexdigest()
    total = hashlib.sha256()
    for f in files:
        total.update(hashlib.sha256(f.read_bytes()).digest())
    return total.hexdigest()
