"""Retention: which recorded runs go, and their removal, folder and rows together.

    Policy      what to keep: the N newest of each workflow, runs younger than a duration,
                failed runs; one workflow or all
    choose()    pure: each run removed, or kept and why
    collect()   measure, remove each run's folder, then delete its rows (`wtflow gc`)
    Pruner      a listener: `[storage] keep_runs` applied to a run's workflow once it has ended

Never removed: a run recorded as running (a writer that opened the record first settled the
runs whose wtflow is gone, by `schema.DeathRule`), the newest finished run of a workflow and the
one its `latest` link points to, and a run of another host (its folder is on that machine, not
here). Running runs take no place among the newest N.
A run whose folder is already gone loses its rows whatever the policy: nothing is left to keep.

The folder goes first, its rows after: a gc stopped between the two leaves a run whose folder
is gone, which the next gc clears, and never a folder that no record names.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, delete, select

from wtflow.db import schema
from wtflow.db.tables import artifacts, attempts, nodes, runs
from wtflow.errors import UsageError
from wtflow.events import Event, RunStarted
from wtflow.status import Status

# Why a run is kept, in the order they are judged (a running run is "running", even if newest).
RUNNING, ELSEWHERE, LATEST, FAILED, NEWEST, RECENT, UNSELECTED, UNSAFE, STUCK = (
    "running", "on another host", "latest", "failed", "among the newest", "recent",
    "not selected", "folder not a run folder", "folder could not be removed",
)  # fmt: skip
# Why a run goes.
GONE, POLICY = "folder already gone", "policy"

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_DURATION = re.compile(r"(\d+(?:\.\d+)?)([smhdw])")
_LONGEST = timedelta(days=365_250)
_CHUNK = 500  # run ids per DELETE: below SQLite's limit of bound parameters


def parse_duration(raw: str, *, source: str) -> timedelta:
    """`30d`, `12h`, `90m`, `45s`, `2w`, or several (`1d12h`): a run's age."""
    text = raw.strip().lower()
    parts = _DURATION.findall(text)
    if not text or "".join(n + u for n, u in parts) != text:
        raise UsageError(
            f"{source}={raw!r} is not a duration; use e.g. 30d, 12h or 90m (units s, m, h, d, w)"
        )
    seconds = sum(float(n) * _UNITS[u] for n, u in parts)
    if seconds > _LONGEST.total_seconds():  # `now - age` must stay a date
        raise UsageError(f"{source}={raw!r} is more than 1000 years; use a shorter age, e.g. 3650d")
    return timedelta(seconds=seconds)


@dataclass(frozen=True)
class Policy:
    """What stays: with neither `keep` nor `older_than`, every run but those whose folder is gone.
    With both, a run goes only when it is beyond the newest `keep` and older than `older_than`."""

    keep: int | None = None  # the newest N runs of each workflow stay
    older_than: timedelta | None = None  # runs that started less than this long ago stay
    keep_failed: bool = False  # runs that failed, timed out, were cancelled or crashed stay
    workflow: str | None = None  # only runs of this workflow are looked at

    @property
    def selects(self) -> bool:
        return self.keep is not None or self.older_than is not None


@dataclass(frozen=True)
class RunRow:
    """A recorded run as retention weighs it."""

    id: str
    workflow: str
    status: str
    started_at: datetime
    host: str
    run_dir: str


@dataclass(frozen=True)
class Choice:
    removed: tuple[tuple[RunRow, str], ...]  # each with why: GONE or POLICY
    kept: Mapping[str, int]  # how many runs were kept, by why


def choose(
    rows: Sequence[RunRow], policy: Policy, *, now: datetime, here: str, gone: Callable[[RunRow], bool],
    latest: Iterable[str] = (),
) -> Choice:  # fmt: skip
    """Which runs go (pure but for `gone`, which looks at the folder). `latest` are the ids of
    the runs the `latest` links point to; `here` is this host's name."""
    pointed = set(latest)
    ranked = sorted(rows, key=lambda r: (r.started_at, r.id), reverse=True)
    rank: dict[str, int] = {}
    seen: Counter[str] = Counter()
    for row in ranked:
        # A running run takes no place among the newest: a run that ends while a later one of its
        # workflow still runs must not be removed by its own keep_runs.
        if row.status != Status.RUNNING:
            rank[row.id] = seen[row.workflow]
            seen[row.workflow] += 1
    removed: list[tuple[RunRow, str]] = []
    kept: Counter[str] = Counter()
    for row in ranked:
        why = _kept(row, policy, rank.get(row.id, 0), now=now, here=here, latest=row.id in pointed)
        if why is None and not _is_run_folder(row):
            why = UNSAFE  # a record naming "/" or a home folder must not make gc remove it
        if why is None and gone(row):
            removed.append((row, GONE))
        elif why is None and policy.selects:
            removed.append((row, POLICY))
        else:
            kept[why or UNSELECTED] += 1
    return Choice(tuple(removed), dict(kept))


def _kept(row: RunRow, policy: Policy, rank: int, *, now: datetime, here: str, latest: bool) -> str | None:
    if row.status == Status.RUNNING:
        return RUNNING
    if row.host != here:
        return ELSEWHERE
    if rank == 0 or latest:
        return LATEST
    if policy.keep_failed and _failed(row.status):
        return FAILED
    if policy.keep is not None and rank < policy.keep:
        return NEWEST
    if policy.older_than is not None and row.started_at > now - policy.older_than:
        return RECENT
    return None


def _failed(status: str) -> bool:
    try:
        return Status(status).is_failure
    except ValueError:  # a status of a newer wtflow: keep it, to be safe
        return True


def _is_run_folder(row: RunRow) -> bool:
    # Run folders are named <time>-<id[:8]> (artifacts.run_folder_name).
    path = Path(row.run_dir)
    return path.is_absolute() and path.name.endswith(f"-{row.id[:8]}") and len(path.parts) > 2


# -- against the record and the disk ----------------------------------------------------


@dataclass(frozen=True)
class Removed:
    """A run that gc removed (or, dry, would remove)."""

    id: str
    workflow: str
    status: str
    started_at: datetime
    run_dir: str
    why: str  # GONE or POLICY
    freed: int  # bytes its folder's removal frees (a file hard-linked from a kept run frees none)


@dataclass(frozen=True)
class Collection:
    """What `collect` did: the runs removed, those kept by why, and what went wrong."""

    dry_run: bool
    removed: tuple[Removed, ...]
    kept: Mapping[str, int]
    problems: tuple[str, ...] = field(default=())

    @property
    def freed(self) -> int:
        return sum(r.freed for r in self.removed)


def read_runs(conn: Connection, workflow: str | None) -> list[RunRow]:
    query = select(runs.c.id, runs.c.workflow, runs.c.status, runs.c.started_at, runs.c.host, runs.c.run_dir)
    if workflow is not None:
        query = query.where(runs.c.workflow == workflow)
    return [RunRow(*row) for row in conn.execute(query)]


def delete_runs(conn: Connection, ids: Sequence[str]) -> None:
    """Every row of these runs, children first (no reliance on ON DELETE CASCADE being on)."""
    for start in range(0, len(ids), _CHUNK):
        chunk = list(ids[start : start + _CHUNK])
        for table in (artifacts, attempts, nodes):
            conn.execute(delete(table).where(table.c.run_id.in_(chunk)))
        conn.execute(delete(runs).where(runs.c.id.in_(chunk)))


def collect(
    engine: Engine, policy: Policy, *, dry_run: bool = False, now: datetime | None = None
) -> Collection:
    """Apply `policy` to the record `engine` writes: each chosen run's folder removed, then its
    rows. A folder that cannot be removed keeps its rows, and is a problem."""
    with engine.begin() as conn:
        rows = read_runs(conn, policy.workflow)
    choice = choose(
        rows, policy, now=now or datetime.now(UTC), here=socket.gethostname(), gone=_gone,
        latest=_pointed_at(rows),
    )  # fmt: skip
    freed = _freed([Path(row.run_dir) for row, why in choice.removed if why == POLICY])
    problems: list[str] = []
    done: list[Removed] = []
    for row, why in choice.removed:
        if not dry_run and why == POLICY:
            problem = _remove_folder(Path(row.run_dir))
            if problem is not None:
                problems.append(problem)
                continue
        done.append(Removed(row.id, row.workflow, row.status, row.started_at, row.run_dir, why,
                            freed.get(Path(row.run_dir), 0)))  # fmt: skip
    if not dry_run and done:
        with engine.begin() as conn:
            delete_runs(conn, [r.id for r in done])
    kept = Counter(choice.kept)
    if problems:
        kept[STUCK] += len(problems)
    return Collection(dry_run, tuple(done), dict(kept), tuple(problems))


def _gone(row: RunRow) -> bool:
    return not os.path.lexists(row.run_dir)


def _pointed_at(rows: Sequence[RunRow]) -> set[str]:
    """The runs some workflow's `latest` link points to (artifacts.ArtifactStore.create_run_dir)."""
    by_folder = {Path(r.run_dir): r.id for r in rows}
    pointed = set()
    for parent in {folder.parent for folder in by_folder}:
        try:
            target = os.readlink(parent / "latest")
        except OSError:
            continue
        run_id = by_folder.get(parent / target)
        if run_id is not None:
            pointed.add(run_id)
    return pointed


def _freed(folders: Sequence[Path]) -> dict[Path, int]:
    """Bytes each folder's removal frees: a file counts once, in the first folder holding it, and
    only if every hard link to it is among these folders (a resumed run links the files it
    reused: removing the older run leaves them with the newer)."""
    inodes: dict[tuple[int, int], list[Any]] = {}  # (dev, ino) -> [size, links, seen, folder]
    for folder in folders:
        for root, dirs, files in os.walk(folder):
            for name in files + [d for d in dirs if os.path.islink(os.path.join(root, d))]:
                try:
                    st = os.lstat(os.path.join(root, name))
                except OSError:
                    continue
                entry = inodes.setdefault((st.st_dev, st.st_ino), [st.st_size, st.st_nlink, 0, folder])
                entry[2] += 1
    freed: dict[Path, int] = {}
    for size, links, seen, folder in inodes.values():
        if seen >= links:
            freed[folder] = freed.get(folder, 0) + size
    return freed


def _remove_folder(folder: Path) -> str | None:
    errors: list[str] = []

    def failed(_function: Any, path: str, info: Any) -> None:
        if not isinstance(info[1], FileNotFoundError):  # another gc got there first
            errors.append(f"{path}: {info[1].strerror or info[1]}")

    shutil.rmtree(folder, onerror=failed)
    if os.path.lexists(folder):
        first = errors[0] if errors else "it is still there"
        return f"run folder {str(folder)!r} could not be removed ({first}); its record is kept"
    return None


# -- at the end of each run --------------------------------------------------------------


class Pruner:
    """`[storage] keep_runs` (a listener): once the run has ended and the recorder before it has
    closed, all but the newest `keep` runs of its workflow go. Never fails the run: a problem
    is a warning."""

    wants_output = False

    def __init__(self, url: str, keep: int) -> None:
        self._url = url
        self._keep = keep
        self._workflow: str | None = None

    def handle(self, event: Event) -> None:
        if isinstance(event, RunStarted):
            self._workflow = event.workflow

    def close(self) -> list[str]:
        if self._workflow is None:  # the run never started
            return []
        try:
            # Not schema.connect: the recorder prepared the schema when the run began.
            engine = schema.open_engine(self._url)
            try:
                done = collect(engine, Policy(keep=self._keep, workflow=self._workflow))
            finally:
                engine.dispose()
        except Exception as e:  # the run has ended and its exit code stands
            why = schema.reason(e, self._url) if not isinstance(e, UsageError) else str(e)
            return [f"keep_runs={self._keep}: old runs of {self._workflow!r} were not removed ({why})"]
        return [f"keep_runs={self._keep}: {p}" for p in done.problems]
