"""Output-heavy workloads: a gigabyte to stdout, live latency, memory of a big tree."""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from benchmarks.harness import Context, Figure, Stats, alternate, bash, config, db_note, rotate
from wtflow import Command, Engine, Node, Workflow
from wtflow.events import Event, OutputReceived


def probe(kind: str, **args: Any) -> dict[str, Any]:
    """Run `benchmarks._probe` in a fresh interpreter (its own peak RSS) and return its JSON."""
    argv = [sys.executable, "-m", "benchmarks._probe", kind, json.dumps(args)]
    done = subprocess.run(argv, capture_output=True, text=True, check=True, cwd=Path(__file__).parent.parent)
    result: dict[str, Any] = json.loads(done.stdout)
    return result


@contextlib.contextmanager
def _fast_folder(ctx: Context, size: int) -> Iterator[Path]:
    """Memory-backed files where there is room: the disk's writeback of earlier gigabytes made
    single samples of either side vary 2.5x, drowning what the orchestrator itself costs."""
    shm = Path("/dev/shm")
    if shm.is_dir() and shutil.disk_usage(shm).free > 4 * size:
        with tempfile.TemporaryDirectory(dir=shm, prefix="wtflow-bench-") as d:
            yield Path(d)
    else:
        with ctx.folder() as d:
            yield d


def bigout(ctx: Context) -> list[Figure]:
    """A gigabyte from one node through the plain and quiet consoles, against `cmd | cat > file`
    (the same pipe and copy wtflow makes) and, for the record, `cmd > file` (no pipe at all)."""
    size = ctx.size(1 << 30, 32 << 20)
    label = f"{size >> 20} MiB" if size < 1 << 30 else f"{size >> 30} GiB"
    line = ("0123456789abcdef" * 64)[:1023]  # with its newline, 1 KiB
    commands = {"no newline": f"head -c {size} /dev/zero", "1 KiB lines": f"yes {line} | head -c {size}"}
    figures = []
    peaks: list[float] = []
    for what, cmd in commands.items():
        with _fast_folder(ctx, size) as folder:
            counter = iter(range(10**6))

            def base(shell: str, folder: Path = folder) -> Callable[[], float]:
                def run() -> float:
                    with tempfile.TemporaryDirectory(dir=folder) as d:
                        return bash(f"{shell} 2> err", Path(d))

                return run

            def ours(
                console: str, cmd: str = cmd, folder: Path = folder, counter: Iterator[int] = counter
            ) -> Callable[[], float]:
                def run() -> float:
                    scratch = folder / f"w{next(counter)}"
                    result = probe("bigout", cmd=cmd, folder=str(scratch), console=console)
                    shutil.rmtree(scratch)  # as the baselines' files go: gigabytes must not pile up in memory
                    if result["size"] != size:
                        raise RuntimeError(f"bigout: kept {result['size']} bytes of {size}")
                    peaks.append(result["peak_mib"])
                    return float(result["seconds"])

                return run

            # Three gigabyte-sized repetitions a side are plenty, and keep the full pass to minutes.
            cat, direct, quiet, plain = rotate(min(ctx.reps, 3), base(f"{cmd} | cat > out"),
                                               base(f"{cmd} > out"), ours("quiet"), ours("plain"))  # fmt: skip
            where = "files on tmpfs" if str(folder).startswith("/dev/shm") else "files on disk"
        for console, w in (("quiet", quiet), ("plain", plain)):
            mib_s = size / (1 << 20) / w.median
            for name, b, target in (("cmd | cat > file", cat, "<= 1.11x (at least 90 % throughput)"),
                                    ("cmd > file", direct, "reported")):  # fmt: skip
                figures.append(Figure(f"big output: {label}, {what}, {console} console", name, "s", b, w, target,
                                      f"{mib_s:.0f} MiB/s; {100 * b.median / w.median:.0f} % of baseline "
                                      f"throughput; {where}"))  # fmt: skip
    small = [probe("bigout", cmd="head -c 1048576 /dev/zero", folder=str(ctx.scratch / f"small{i}"))["peak_mib"]
             for i in range(ctx.reps)]  # fmt: skip
    figures.append(Figure(f"memory: orchestrator peak RSS, {label} out", "same with 1 MiB out", "MiB",
                          Stats.of(small), Stats.of(peaks), "< 50 MiB, flat", db_note()))  # fmt: skip
    return figures


class _Arrivals:
    """A listener noting when each timestamped line reached it."""

    wants_output = True

    def __init__(self) -> None:
        self.latencies: list[float] = []
        self._tail = b""

    def feed(self, data: bytes) -> None:
        now = time.monotonic()
        *lines, self._tail = (self._tail + data).split(b"\n")
        self.latencies += [(now - float(x)) * 1000 for x in lines if x]

    def handle(self, event: Event) -> None:
        if isinstance(event, OutputReceived) and event.stream == "stdout":
            self.feed(event.data)

    def close(self) -> list[str]:
        return []


# time.monotonic is CLOCK_MONOTONIC, one clock for every process on the machine.
_TICKER = "import time\nfor _ in range({n}):\n    print(time.monotonic(), flush=True)\n    time.sleep(0.01)\n"


def latency(ctx: Context) -> list[Figure]:
    n = ctx.size(300, 30)
    argv = [sys.executable, "-c", _TICKER.format(n=n)]
    base_lat: list[float] = []
    ours_lat: list[float] = []

    async def bare() -> None:
        # The least any asyncio program can do: read the pipe and look at the bytes.
        arrivals = _Arrivals()
        proc = await asyncio.create_subprocess_exec(*argv, stdout=subprocess.PIPE)
        assert proc.stdout is not None
        while data := await proc.stdout.read(65536):
            arrivals.feed(data)
        await proc.wait()
        base_lat.extend(arrivals.latencies)

    def base() -> float:
        return _timed_run(lambda: asyncio.run(bare()))

    with ctx.folder() as folder:
        counter = iter(range(10**6))

        def ours() -> float:
            arrivals = _Arrivals()
            wf = Workflow(name="latency", root=Node(name="ticker", executable=Command(argv)))
            took = _timed_run(Engine(wf, config(folder / f"w{next(counter)}"), listeners=[arrivals]).run)
            ours_lat.extend(arrivals.latencies)
            return took

        alternate(max(2, ctx.reps // 2), base, ours)
    b, w = Stats.of(base_lat), Stats.of(ours_lat)
    p99 = _p99(ours_lat)
    return [Figure(f"live latency: a line every 10 ms, {n} lines", "bare asyncio pipe reader", "ms", b, w,
                   "well under 10 ms", f"p99 {p99:.2f} ms (baseline p99 {_p99(base_lat):.2f} ms), {db_note()}",
                   {"p99_ms": p99, "baseline_p99_ms": _p99(base_lat)})]  # fmt: skip


def _p99(samples: list[float]) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]


def _timed_run(fn: Any) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def memory(ctx: Context) -> list[Figure]:
    shape = [5, 10, 100] if not ctx.quick else [2, 5, 20]
    built: list[float] = []
    ran: list[float] = []
    per_node: list[float] = []
    with ctx.folder() as folder:
        for i in range(max(2, ctx.reps // 2)):
            idle = probe("tree", shape=shape, folder=str(folder / f"idle{i}"), run=False)
            done = probe("tree", shape=shape, folder=str(folder / f"run{i}"), run=True)
            built.append(idle["peak_mib"])
            ran.append(done["peak_mib"])
            per_node.append((done["peak_mib"] - idle["empty_mib"]) * 1024 / done["nodes"])
    n = shape[0] * shape[1] * shape[2]
    kib = sorted(per_node)[len(per_node) // 2]
    return [Figure(f"memory: {n}-node tree, peak RSS", "same tree built, nothing run", "MiB",
                   Stats.of(built), Stats.of(ran), "reported",
                   f"{kib:.1f} KiB per node (run, over an empty interpreter), {db_note()}",
                   {"kib_per_node": per_node})]  # fmt: skip
