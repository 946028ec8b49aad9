"""The artifacts folder unusable (not a folder, read-only) or full: a clear message naming the
path, never a hang; output already kept stays kept.

A full disk is a small tmpfs when we may mount one (root), and RLIMIT_FSIZE otherwise (the
kernel then refuses writes past the limit with EFBIG, which wtflow meets the same way).
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import config, wf
from tests.procs import PATTERN, argv
from wtflow import Command, Engine, Node, Status, UsageError

ROOT = Path(__file__).parents[2]


def _mount_tmpfs(where: Path, options: str) -> bool:
    if os.geteuid() != 0:
        return False
    where.mkdir(exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(where)], capture_output=True)
    return done.returncode == 0


@contextlib.contextmanager
def _tmpfs(where: Path, options: str) -> Iterator[Path]:
    if not _mount_tmpfs(where, options):
        pytest.skip("needs root and mount(8) for a small tmpfs")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=True)


@pytest.fixture
def read_only_dir(tmp_path: Path) -> Iterator[Path]:
    """A folder this process cannot write in: a read-only tmpfs as root, mode 0500 otherwise."""
    where = tmp_path / "ro"
    if os.geteuid() != 0:
        where.mkdir(mode=0o500)
        yield where
        where.chmod(0o700)
        return
    with _tmpfs(where, "ro,size=1m") as mounted:
        yield mounted


def test_artifacts_folder_under_a_file_is_a_clear_error_and_nothing_runs(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    marker = tmp_path / "ran"
    node = Node(name="n", executable=Command(f"touch {marker}"))
    with pytest.raises(UsageError) as e:
        Engine(wf(node), config(tmp_path, storage__artifacts_dir=blocker / "artifacts")).run()
    assert str(e.value) == (
        f"artifacts folder {str(blocker / 'artifacts')!r} is not usable: Not a directory; "
        "point WTFLOW_ARTIFACTS_DIR (or --artifacts-dir) at a writable folder"
    )
    assert not marker.exists()
    assert node.status == Status.PENDING


def test_read_only_artifacts_folder_is_a_clear_error_and_nothing_runs(
    tmp_path: Path, read_only_dir: Path
) -> None:
    marker = tmp_path / "ran"
    node = Node(name="n", executable=Command(f"touch {marker}"))
    with pytest.raises(UsageError, match=r"^artifacts folder '.*/ro/artifacts' is not usable: ") as e:
        Engine(wf(node), config(tmp_path, storage__artifacts_dir=read_only_dir / "artifacts")).run()
    assert "\n" not in str(e.value)
    assert not marker.exists()


def test_state_folder_that_cannot_be_created_is_a_clear_error(tmp_path: Path, read_only_dir: Path) -> None:
    node = Node(name="n", executable=Command("true"))
    with pytest.raises(
        UsageError, match=r"^state folder '.*/ro/state' cannot be created: .*; set WTFLOW_STATE_DIR"
    ):
        Engine(wf(node), config(tmp_path, storage__state_dir=read_only_dir / "state")).run()


def _starts_with_pattern(path: Path) -> int:
    data = path.read_bytes()
    assert data == (PATTERN * (len(data) // len(PATTERN) + 1))[: len(data)]
    return len(data)


def test_full_disk_mid_run_is_reported_and_earlier_output_kept(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    with _tmpfs(tmp_path / "small", "size=1m") as disk:
        before = Node(name="before", executable=Command("echo kept"))
        flood = Node(name="flood", executable=Command(argv("flood.py", 4 << 20)))
        after = Node(name="after", executable=Command("echo still runs"))
        engine = Engine(wf(before, flood, after), config(tmp_path, storage__artifacts_dir=disk))
        code = engine.run()
        assert before.stdout_artifact.data == b"kept\n"
        kept = _starts_with_pattern(flood.stdout_artifact.path)
        after_status = after.status
    # The process was drained to its end (it did not block on a full pipe) and succeeded.
    assert (code, flood.status, after_status) == (0, Status.SUCCEEDED, Status.SUCCEEDED)
    assert kept < 4 << 20
    err = capfd.readouterr().err
    assert f"wtflow: warning: output of root/flood not fully kept in {flood.stdout_artifact.path}: " in err
    assert "No space left on device" in err


FSIZE_SCRIPT = """
import json, resource, sys
from pathlib import Path
sys.path.insert(0, sys.argv[1])
from tests.procs import argv
from wtflow import Command, Config, Engine, Node, Workflow
state, size = Path(sys.argv[2]), int(sys.argv[3])
# Python ignores SIGXFSZ, so writes past the limit fail with EFBIG instead of killing us.
resource.setrlimit(resource.RLIMIT_FSIZE, (1_000_000, resource.RLIM_INFINITY))
before = Node(name="before", executable=Command("echo kept"))
flood = Node(name="flood", executable=Command(argv("flood.py", size)))
cfg = Config.load(environ={}, overrides={"db.url": "", "storage.state_dir": state, "run.console": "quiet"})
code = Engine(Workflow(name="fsize", root=Node(name="root", children=[before, flood])), cfg).run()
resource.setrlimit(resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
Path(state, "result.json").write_text(json.dumps({"code": code, "status": flood.status,
    "before": before.stdout_artifact.data.decode(), "flood": str(flood.stdout_artifact.path)}))
"""


@pytest.mark.parametrize("size", [1_000_500, 3 << 20])
def test_file_size_limit_mid_run_is_reported_and_earlier_output_kept(tmp_path: Path, size: int) -> None:
    """Regression: a short write (the disk filled up inside a chunk) was taken as complete, so
    output cut at the end of a node was lost without a word."""
    state = tmp_path / "state"
    state.mkdir()
    done = subprocess.run(
        [sys.executable, "-c", FSIZE_SCRIPT, str(ROOT), str(state), str(size)],
        capture_output=True,
        timeout=60,
    )
    result = json.loads((state / "result.json").read_text())
    assert (result["code"], result["status"], result["before"]) == (0, "succeeded", "kept\n")
    assert _starts_with_pattern(Path(result["flood"])) == 1_000_000
    assert done.stderr.decode() == (
        f"wtflow: warning: output of root/flood not fully kept in {result['flood']}: File too large\n"
    )
