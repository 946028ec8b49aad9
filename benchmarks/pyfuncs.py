"""Python functions: many small PyFuncs against a fork per call (`os.fork` + `os.wait`)."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from benchmarks.harness import Context, Figure, alternate, db_note, run_engine
from wtflow import Node, PyFunc, Workflow
from wtflow.config import default_max_parallel


def work(i: int) -> None:
    """The function both sides run: a little computing and one line of output."""
    print(f"item {i}: {sum(range(1000))}")


def _in_files(i: int, folder: str) -> None:
    # What wtflow does for a PyFunc's output, done by hand: the process's fd 1 and 2 into files.
    out = os.open(f"{folder}/{i}.out", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    err = os.open(f"{folder}/{i}.err", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.dup2(out, 1)
    os.dup2(err, 2)
    work(i)
    sys.stdout.flush()


def _baseline(n: int, folder: Path, *, window: int) -> float:
    """One forked process per call (`os.fork` + `os.wait`), at most `window` at once (1: one after
    another)."""
    start = time.perf_counter()
    running = 0
    for i in range(n):
        if running >= window:
            os.wait()
            running -= 1
        sys.stdout.flush()
        pid = os.fork()
        if pid == 0:  # pragma: no cover (the child leaves through os._exit)
            code = 1
            try:
                _in_files(i, str(folder))
                code = 0
            finally:
                os._exit(code)
        running += 1
    for _ in range(running):
        os.wait()
    return time.perf_counter() - start


def _ours(n: int, folder: Path, *, parallel: bool) -> float:
    leaves = [Node(name=f"f{i}", executable=PyFunc(func=work, args=(i,))) for i in range(n)]
    return run_engine(
        Workflow(name="pyfuncs", root=Node(name="root", parallel=parallel, children=leaves)), folder
    )


def pyfuncs(ctx: Context) -> list[Figure]:
    n = ctx.size(300, 60)
    window = default_max_parallel()
    figures = []
    for parallel in (False, True):
        counter = iter(range(10**6))
        with ctx.folder() as folder:

            def base(parallel: bool = parallel, counter: Iterator[int] = counter) -> float:
                d = folder / f"b{next(counter)}"
                d.mkdir()
                return _baseline(n, d, window=window if parallel else 1)

            def ours(parallel: bool = parallel, counter: Iterator[int] = counter) -> float:
                return _ours(n, folder / f"w{next(counter)}", parallel=parallel)

            b, w = alternate(ctx.reps, base, ours)
        how = f"parallel (max {window} at once)" if parallel else "sequential"
        target = "<= 1.5x" if parallel else "<= 1.2x"
        figures.append(Figure(f"Python functions: {n} PyFuncs, {how}", "os.fork + os.wait, one process each",
                              "s", b, w, target, db_note()))  # fmt: skip
    return figures
