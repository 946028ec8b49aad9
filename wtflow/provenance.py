"""Where a run came from, for its record: the command line, the wtfile and its SHA-256, the git
commit, branch and dirtiness of the wtfile's repository, the selection and the wtflow version.

`Provenance.start` launches the git queries at once and `collect` reads them later, so they run
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
_QUERIES = {
    "commit": ["rev-parse", "HEAD"],
    "branch": ["rev-parse", "--abbrev-ref", "HEAD"],
    "dirty": ["status", "--porcelain", "--untracked-files=no"],
}


class Provenance:
    """The git queries under way for one wtfile, and what is known without them."""

    def __init__(self, wtfile: Path, argv: Sequence[str]) -> None:
        self.base: dict[str, Any] = {"command": list(argv), "wtflow_version": __version__}
        self._procs: dict[str, subprocess.Popen[str]] = {}
        files = [wtfile] if wtfile.is_file() else sorted(wtfile.rglob("*wtfile*.py"))
        if files:
            self.base["wtfile"] = str(files[0].absolute()) if wtfile.is_file() else str(wtfile.absolute())
            self.base["wtfile_sha256"] = _digest(files) if files else None
        folder = wtfile if wtfile.is_dir() else wtfile.parent
        for key, args in _QUERIES.items():
            try:
                self._procs[key] = subprocess.Popen(
                    ["git", "-C", str(folder.absolute()), *args], stdin=subprocess.DEVNULL,
                    stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                )  # fmt: skip
            except OSError:  # no git installed
                break

    @classmethod
    def start(cls, wtfile: Path, argv: Sequence[str]) -> Provenance:
        return cls(wtfile, argv)

    def close(self) -> None:
        """Stop and reap the git queries (their answers are no longer wanted)."""
        for proc in self._procs.values():
            with contextlib.suppress(OSError):
                proc.kill()
            proc.communicate()
        self._procs.clear()

    def collect(self, **more: Any) -> dict[str, Any]:
        """Everything known, with `more` (parameters, selection); git's answers if it gave them."""
        found = {**self.base, **more}
        git: dict[str, Any] = {}
        for key, proc in self._procs.items():
            try:
                out, _ = proc.communicate(timeout=GIT_TIMEOUT)
            except subprocess.TimeoutExpired:
                proc.kill()
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.communicate(timeout=GIT_TIMEOUT)
                continue
            if proc.returncode == 0:
                git[key] = out.strip() != "" if key == "dirty" else out.strip()
        self._procs.clear()
        if "commit" in git:
            found["git"] = git
        return found


def _digest(files: Sequence[Path]) -> str:
    # One wtfile: its own SHA-256 (what `sha256sum wtfile.py` prints); a folder: of each in order.
    if len(files) == 1:
        return hashlib.sha256(files[0].read_bytes()).hexdigest()
    total = hashlib.sha256()
    for f in files:
        total.update(hashlib.sha256(f.read_bytes()).digest())
    return total.hexdigest()
