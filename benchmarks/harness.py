"""Timing and reporting: alternate repetitions, medians, ratios, the table and the JSON file."""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import wtflow
from wtflow import Config


class Skip(Exception):
    """A workload that cannot run here (a missing layer, a missing tool); the message says why."""


@dataclass
class Stats:
    median: float
    min: float
    max: float
    samples: list[float]

    @classmethod
    def of(cls, samples: list[float]) -> Stats:
        # Pooled per-line samples (latency) would swamp the JSON: keep those as a summary only.
        kept = samples if len(samples) <= 50 else []
        return cls(statistics.median(samples), min(samples), max(samples), kept)

    def quantile(self, q: float) -> float:
        ordered = sorted(self.samples)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


@dataclass
class Figure:
    """One row of the table: wtflow against its baseline."""

    workload: str
    baseline_name: str
    unit: str  # what the samples are: "s", "MiB", "ms"
    baseline: Stats | None
    wtflow: Stats | None
    target: str = ""
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
    skipped: str = ""

    @property
    def ratio(self) -> float | None:
        if self.baseline is None or self.wtflow is None or self.baseline.median <= 0:
            return None
        return self.wtflow.median / self.baseline.median


@dataclass
class Context:
    """What every workload gets: its size switch, repetitions and a scratch folder."""

    quick: bool
    reps: int
    scratch: Path
    cores: int = field(default_factory=lambda: os.cpu_count() or 1)

    @contextmanager
    def folder(self) -> Iterator[Path]:
        with tempfile.TemporaryDirectory(dir=self.scratch) as d:
            yield Path(d)

    def size(self, full: int, quick: int) -> int:
        return quick if self.quick else full


def alternate(
    reps: int, baseline: Callable[[], float], candidate: Callable[[], float]
) -> tuple[Stats, Stats]:
    """Run baseline, then wtflow, `reps` times in turn, so drift on a shared machine hits both alike.

    Each callable returns the seconds of the part it measures (set-up and clean-up excluded)."""
    base, cand = rotate(reps, baseline, candidate)
    return base, cand


def rotate(reps: int, *sides: Callable[[], float]) -> list[Stats]:
    """`alternate` for any number of sides: each repetition runs them all, starting with the next
    one each time, so that none always inherits a warm page cache or a quiet machine."""
    samples: list[list[float]] = [[] for _ in sides]
    for i in range(reps):
        for k in range(len(sides)):
            j = (i + k) % len(sides)
            samples[j].append(sides[j]())
    return [Stats.of(s) for s in samples]


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def bash(script: str, cwd: Path) -> float:
    """Seconds `bash -c script` took; the baseline side of most workloads."""
    start = time.perf_counter()
    subprocess.run(["bash", "-c", script], cwd=cwd, check=True)
    return time.perf_counter() - start


_DATABASE: list[str] = []


def shared_database() -> str:
    """One SQLite record for every run of the harness, created up front: a project's database
    exists after its first run, so creating the schema is not what a run costs."""
    if not _DATABASE:
        from wtflow.db.recorder import Recorder

        url = f"sqlite:///{tempfile.mkdtemp(prefix='wtflow-bench-')}/wtflow.db"
        Recorder.connect(url).close()
        _DATABASE.append(url)
    return _DATABASE[0]


def config(folder: Path, *, record: bool = True, **overrides: Any) -> Config:
    """wtflow's settings for a workload: state under `folder`, no terminal output (the baselines
    write to files only), and the record on, as by default."""
    values: dict[str, Any] = {"storage.state_dir": folder / "state", "run.console": "quiet"}
    values.update(overrides)
    if "db.url" not in values:
        values["db.url"] = shared_database() if record else ""
    return Config.load(environ={}, overrides=values)


def run_engine(wf: wtflow.Workflow, folder: Path, **settings: Any) -> float:
    """Seconds `Engine(wf).run()` takes with the workload's settings; a failed run is an error."""
    engine = wtflow.Engine(wf, config(folder, **settings))
    start = time.perf_counter()
    code = engine.run()
    took = time.perf_counter() - start
    if code != 0:
        raise RuntimeError(f"{wf.name}: wtflow exited {code}; problems: {engine.problems}")
    return took


def db_note(record: bool = True) -> str:
    return "database on" if record else "database off"


# -- output -------------------------------------------------------------------------------


def _fmt(value: float, unit: str) -> str:
    if unit == "s":
        return f"{value:.3f} s"
    if unit == "ms":
        return f"{value:.2f} ms"
    return f"{value:.1f} {unit}"


def table(figures: list[Figure]) -> str:
    """A Markdown table (also readable in a terminal), one row per figure."""
    rows = ["| workload | baseline | baseline median | wtflow median | ratio | target | note |",
            "|---|---|---|---|---|---|---|"]  # fmt: skip
    for f in figures:
        if f.skipped:
            rows.append(f"| {f.workload} | {f.baseline_name} | - | - | skipped | {f.target} | {f.skipped} |")
            continue
        assert f.baseline is not None
        assert f.wtflow is not None
        ratio = "-" if f.ratio is None else f"{f.ratio:.2f}x"
        baseline = f.baseline_name.replace("|", "\\|")  # `cmd | tee`: not a column break
        rows.append(
            f"| {f.workload} | {baseline} | {_fmt(f.baseline.median, f.unit)} | "
            f"{_fmt(f.wtflow.median, f.unit)} | {ratio} | {f.target} | {f.note} |"
        )
    return "\n".join(rows)


def machine() -> dict[str, Any]:
    return {
        "cpu_count": os.cpu_count(),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "wtflow": wtflow.__version__,
        "commit": _git_commit(),
    }


def creation_ms(folder: Path, count: int = 200) -> float:
    """Milliseconds to create a folder and two files in it, as each attempt of a node does.

    On ext4 without a journal (this machine's disk) a new inode is looked for past those freed
    in the last minutes, so this grows with what the workloads' clean-up deleted: from ~0.1 ms
    to several. A run's figures are read against it."""
    with tempfile.TemporaryDirectory(dir=folder) as d:
        start = time.perf_counter()
        for i in range(count):
            sub = os.path.join(d, str(i))
            os.mkdir(sub)
            for name in ("stdout", "stderr"):
                os.close(os.open(os.path.join(sub, name), os.O_WRONLY | os.O_CREAT, 0o600))
        return (time.perf_counter() - start) / count * 1000


def _git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True, text=True, check=True, cwd=Path(__file__).parent,
        )  # fmt: skip
    except (OSError, subprocess.CalledProcessError):
        return None
    return out.stdout.strip()


def write_json(
    figures: list[Figure],
    out_dir: Path,
    *,
    quick: bool,
    seconds: float,
    partial: bool = False,
    disk: dict[str, float] | None = None,
) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%S")
    kind = "quick" if quick else "partial" if partial else "full"  # only a whole run is "full"
    path = out_dir / f"{stamp}-{kind}.json"
    doc = {
        "machine": machine(),
        "quick": quick,
        "seconds": round(seconds, 1),
        "disk": disk or {},  # creation_ms before and after the workloads
        "figures": [dict(asdict(f), ratio=f.ratio) for f in figures],
    }
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(doc, indent=1) + "\n")
    tmp.replace(path)
    return path
