"""What a node leaves for later nodes besides its streams: the `result.json` its PyFunc wrote,
and the files its `Node(artifacts=[...])` declares, copied into its attempt's folder.

    <attempt folder>/result.json
    <attempt folder>/<artifact name>/<file name>     one per file the declared path matched

Each is measured and digested (SHA-256) for the record. Copies never hold a file in memory:
a reflink where the filesystem shares blocks, else `shutil.copyfile` (sendfile on Linux).
"""

from __future__ import annotations

import asyncio
import fcntl
import glob
import hashlib
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from wtflow.events import KeptFile
from wtflow.model import RESULT_FILE, Artifact, Node

_FICLONE = 0x40049409  # linux/fs.h: share the source's blocks (btrfs, XFS); no bytes are copied


@dataclass(frozen=True, slots=True)
class Kept:
    """What `keep` found: the files kept, and why the node fails if a declared file is missing
    or cannot be copied."""

    files: tuple[KeptFile, ...]
    problem: str | None = None


def keep(node: Node, folder: Path, cwd: Path | None, *, succeeded: bool) -> Kept:
    """Digest the attempt's result and copy its declared files into `folder` (blocking: call it
    on a worker thread). A declared file that is missing after a successful attempt is a problem,
    unless it is optional; after a failure whatever exists is kept, for the post-mortem."""
    files: list[KeptFile] = []
    result = folder / RESULT_FILE
    if result.is_file():
        files.append(KeptFile("result", result, result.stat().st_size, digest(result), "result"))
    missing: list[str] = []
    problems: list[str] = []
    base = Path(cwd) if cwd is not None else Path.cwd()
    for artifact in node.artifacts:
        found = matches(artifact, base)
        if not found:
            if not artifact.optional:
                missing.append(f"{artifact.name} ({artifact.file_path})")
            continue
        absolute, target = Path(str(artifact.file_path)).is_absolute(), folder / artifact.name
        target.mkdir(mode=0o700, parents=True, exist_ok=True)
        for source in found:
            copy, relative = target / _unique(target, source.name), os.path.relpath(source, base)
            try:
                copy_file(source, copy)
                files.append(
                    KeptFile(artifact.name, copy, copy.stat().st_size, digest(copy), "file", relative)
                )
            except OSError as e:  # unreadable (mode 000, /proc/*/mem), gone, a full disk: the node fails
                copy.unlink(missing_ok=True)
                shown = source if absolute else relative
                problems.append(
                    f"declared artifact {artifact.name} ({shown}) cannot be copied: {e.strerror or e}"
                )
    if missing and succeeded:
        problems.insert(
            0,
            f"declared artifact {', '.join(missing)} was not made in {base}; make the node write it, "
            "fix its file_path, or mark it optional=True",
        )
    return Kept(tuple(files), "; ".join(problems) or None)


def forget(node: Node) -> None:
    """Take the node's result and declared handles off an earlier attempt's files, as a new
    attempt starts: if it returns nothing or makes no file, later nodes must not read the old."""
    for artifact in (node.result_artifact, *node.artifacts):
        artifact.reset()


def bind(node: Node, kept: Kept) -> None:
    """Point the node's handles at the copies, for the nodes that read them later."""
    by_name: dict[str, list[Path]] = {}
    for f in kept.files:
        by_name.setdefault(f.name, []).append(f.path)
    for name, paths in by_name.items():
        node.artifact(name).bind(paths[0], paths if name != "result" else None)


def matches(artifact: Artifact, base: Path) -> list[Path]:
    """The regular files the declared path names, relative to `base`; a glob may match several."""
    assert artifact.file_path is not None
    pattern = str(artifact.file_path if artifact.file_path.is_absolute() else base / artifact.file_path)
    names = sorted(glob.glob(pattern, recursive=True)) if glob.has_magic(pattern) else [pattern]
    return [Path(name) for name in names if os.path.isfile(name)]


def copy_file(source: Path, target: Path) -> None:
    """Copy without reading the file into memory: a reflink if the filesystem can, else in the kernel."""
    with open(source, "rb") as src:
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # owner-only, as all output
        try:
            fcntl.ioctl(fd, _FICLONE, src.fileno())
            return
        except OSError:  # another filesystem, or another device: a real copy
            pass
        finally:
            os.close(fd)
    shutil.copyfile(source, target)  # sendfile(2) on Linux, fixed-size chunks elsewhere


def digest(path: Path) -> str:
    """The file's SHA-256, read in chunks."""
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def _unique(folder: Path, name: str) -> str:
    # Two matches of one name (`**/report.xml`) keep both: the second becomes report-2.xml.
    if not (folder / name).exists():
        return name
    stem, dot, suffix = name.partition(".")
    number = 2
    while (folder / f"{stem}-{number}{dot}{suffix}").exists():
        number += 1
    return f"{stem}-{number}{dot}{suffix}"


async def keep_attempt(node: Node, folder: Path, cwd: Path | None, *, succeeded: bool) -> Kept:
    """`keep`, then the node's artifacts bound to what was kept. Copying declared files may take
    long: off the loop. A result alone is one stat, on it."""
    if node.artifacts:
        kept = await asyncio.to_thread(keep, node, folder, cwd, succeeded=succeeded)
    else:
        kept = keep(node, folder, cwd, succeeded=succeeded)
    bind(node, kept)
    return kept
