"""Workloads of shell commands: fan-out, chain, big tree, uneven branches, recording, the CLI."""

from __future__ import annotations

import itertools
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from benchmarks.harness import (
    Context,
    Figure,
    Skip,
    Stats,
    alternate,
    bash,
    config,
    db_note,
    rotate,
    run_engine,
)
from wtflow import Command, Engine, Node, Workflow
from wtflow.events import Event, NodeStarted


def _leaf(name: str, cmd: str) -> Node:
    return Node(name=name, executable=Command(cmd))


def _fan(n: int) -> Workflow:
    leaves = [_leaf(f"n{i}", f"echo hello {i}") for i in range(n)]
    return Workflow(name="fanout", root=Node(name="root", parallel=True, children=leaves))


def _xargs(ctx: Context, commands: list[str], folder: Path) -> float:
    """`xargs -P <cores>` running each command with its stdout and stderr in files of its own."""
    out = folder / "xargs"
    out.mkdir()
    listing = folder / "commands"
    # NUL-separated pairs "<i> <command>"; one `sh` per command evaluates it with its output in
    # files, so each command costs one process start, as under wtflow (`/bin/sh -c <command>`).
    listing.write_text("".join(f"{i}\0{c}\0" for i, c in enumerate(commands)))
    script = f"xargs -0 -n 2 -P {ctx.cores} sh -c 'eval \"$1\" > {out}/$0.out 2> {out}/$0.err' < {listing}"
    return bash(script, folder)


def _parallel(ctx: Context, commands: list[str], folder: Path, jobs: int | None = None) -> float:
    """GNU parallel with `--results`: each command's stdout and stderr in files of its own."""
    (folder / "commands").write_text("".join(f"{c}\n" for c in commands))
    return bash(f"parallel -j {jobs or ctx.cores} --results out < commands", folder)


def _make(
    ctx: Context,
    commands: list[str],
    folder: Path,
    jobs: int | None = None,
    after: list[list[int]] | None = None,
) -> float:
    """`make -j <cores>`: one target a command, its output in files, as a build would; `after`
    lists, for each command, those it waits for (its target's prerequisites)."""
    targets = [f"t{i}" for i in range(len(commands))]
    needs = [" ".join(targets[j] for j in before) for before in after] if after else [""] * len(commands)
    rules = "".join(
        f"{t}: {n}\n\t@{c} > out/{t}.out 2> out/{t}.err\n"
        for t, c, n in zip(targets, commands, needs, strict=True)
    )
    (folder / "Makefile").write_text(f".PHONY: all {' '.join(targets)}\nall: {' '.join(targets)}\n{rules}")
    (folder / "out").mkdir()
    return bash(f"make -s -j {jobs or ctx.cores}", folder)


def _with_make(
    ctx: Context, make: Callable[[], float], *sides: Callable[[], float]
) -> tuple[list[Stats], Stats | None]:
    """`rotate` over the sides and, where make is installed, `make` too: the sides' figures and
    make's (None without it)."""
    if shutil.which("make") is None:
        return rotate(ctx.reps, *sides), None
    *stats, made = rotate(ctx.reps, *sides, make)
    return stats, made


def _make_figure(ctx: Context, title: str, shape: str, made: Stats | None, ours: Stats) -> Figure:
    return Figure(title, f"make -j {ctx.cores}, {shape}", "s", made, ours if made else None, "reported",
                  db_note(), skipped="" if made else "make is not installed")  # fmt: skip


def fanout(ctx: Context) -> list[Figure]:
    n = ctx.size(500, 100)
    commands = [f"echo hello {i}" for i in range(n)]
    baselines = {
        f"xargs -P {ctx.cores}": (_xargs, "xargs"),
        f"GNU parallel -j {ctx.cores} --results": (_parallel, "parallel"),
        f"make -j {ctx.cores}": (_make, "make"),
    }
    figures = []
    with ctx.folder() as folder:
        counter = iter(range(10**6))

        def ours() -> float:
            return run_engine(_fan(n), folder / f"w{next(counter)}")

        for name, (tool, program) in baselines.items():
            if shutil.which(program) is None:
                figures.append(Figure(f"fan-out: {n} parallel echo", name, "s", None, None, "<= 1.2x",
                                      skipped=f"{program} is not installed"))  # fmt: skip
                continue

            def base(tool: Callable[[Context, list[str], Path], float] = tool) -> float:
                with ctx.folder() as d:
                    return tool(ctx, commands, d)

            b, w = alternate(ctx.reps, base, ours)
            figures.append(Figure(f"fan-out: {n} parallel echo", name, "s", b, w, "<= 1.2x",
                                  f"artifacts on, {db_note()}"))  # fmt: skip
    return figures


def chain(ctx: Context) -> list[Figure]:
    n = ctx.size(300, 60)
    figures = []
    with ctx.folder() as folder:
        counter = iter(range(10**6))
        script = f"for i in $(seq {n}); do /bin/sh -c true > o/$i.out 2> o/$i.err; done"

        def loop(d: Path) -> float:
            (d / "o").mkdir()
            return bash(script, d)

        def ours() -> float:
            leaves = [_leaf(f"n{i}", "true") for i in range(n)]
            wf = Workflow(name="chain", root=Node(name="root", children=leaves))
            return run_engine(wf, folder / f"w{next(counter)}")

        # The tools users would pick for a sequence, one job at a time, each output in files.
        baselines: dict[str, tuple[Callable[[Path], float], str | None, str]] = {
            "bash loop, sh -c true > file": (loop, None, "<= 1.15x"),
            "GNU parallel -j 1 --results": (
                lambda d: _parallel(ctx, ["true"] * n, d, jobs=1),
                "parallel",
                "reported",
            ),
            "make -j 1": (lambda d: _make(ctx, ["true"] * n, d, jobs=1), "make", "reported"),
        }
        for name, (tool, program, target) in baselines.items():
            if program is not None and shutil.which(program) is None:
                figures.append(Figure(f"chain: {n} sequential true", name, "s", None, None, target,
                                      skipped=f"{program} is not installed"))  # fmt: skip
                continue

            def base(tool: Callable[[Path], float] = tool) -> float:
                with ctx.folder() as d:
                    return tool(d)

            b, w = alternate(ctx.reps, base, ours)
            figures.append(Figure(f"chain: {n} sequential true", name, "s", b, w, target,
                                  f"artifacts on, {db_note()}"))  # fmt: skip
    return figures


def _big_tree_order(groups: int, subgroups: int, leaves: int) -> list[list[int]]:
    """What each command of `_big_tree` waits for, as make would be told: the command before it
    in its sequence, and for a sequence's first, the last of every sequence of the group before."""

    def at(g: int, s: int, i: int) -> int:
        return (g * subgroups + s) * leaves + i

    return [[at(g, s, i - 1)] if i else [at(g - 1, t, leaves - 1) for t in range(subgroups)] if g else []
            for g in range(groups) for s in range(subgroups) for i in range(leaves)]  # fmt: skip


def _big_tree(groups: int, subgroups: int, leaves: int) -> tuple[Workflow, list[str]]:
    """Depth 3: a sequence of parallel groups of sequences of commands."""
    commands: list[str] = []
    top = []
    for g in range(groups):
        subs = []
        for s in range(subgroups):
            cmds = [f"echo {g}.{s}.{i}" for i in range(leaves)]
            commands += cmds
            subs.append(Node(name=f"s{s}", children=[_leaf(f"l{i}", c) for i, c in enumerate(cmds)]))
        top.append(Node(name=f"g{g}", parallel=True, children=subs))
    return Workflow(name="bigtree", root=Node(name="root", children=top)), commands


class _FirstStart:
    wants_output = False

    def __init__(self) -> None:
        self.at: float | None = None

    def handle(self, event: Event) -> None:
        if self.at is None and isinstance(event, NodeStarted):
            self.at = time.perf_counter()

    def close(self) -> list[str]:
        return []


def bigtree(ctx: Context) -> list[Figure]:
    shape = (5, 10, 100) if not ctx.quick else (2, 5, 20)
    n = shape[0] * shape[1] * shape[2]
    first: list[float] = []
    with ctx.folder() as folder:
        counter = iter(range(10**6))
        _, commands = _big_tree(*shape)

        def base() -> float:
            with ctx.folder() as d:
                return _xargs(ctx, commands, d)

        def make() -> float:
            with ctx.folder() as d:
                return _make(ctx, commands, d, after=_big_tree_order(*shape))

        def ours() -> float:
            wf, _ = _big_tree(*shape)
            probe = _FirstStart()
            engine = Engine(wf, config(folder / f"w{next(counter)}"), listeners=[probe])
            start = time.perf_counter()
            engine.run()
            took = time.perf_counter() - start
            assert probe.at is not None
            first.append((probe.at - start) / took)
            return took

        (b, w), made = _with_make(ctx, make, base, ours)
    share = sorted(first)[len(first) // 2]
    title = f"big tree: {n} nodes, depth 3"
    return [Figure(title, f"xargs -P {ctx.cores}", "s", b, w, "<= 1.5x",
                   f"first process at {share:.1%} of the run (target < 5 %), {db_note()}",
                   {"first_start_share": first}),
            _make_figure(ctx, title, "the same order", made, w)]  # fmt: skip


def _crossed(groups: int, leaves: int, edges: bool) -> Workflow:
    """Parallel sequences of `true`; with `edges`, each leaf also waits for the leaf at its place
    in the sequence before (a grid: (groups - 1) * leaves waits across branches)."""
    grid = [[_leaf(f"l{i}", "true") for i in range(leaves)] for _ in range(groups)]
    if edges:
        for before, row in itertools.pairwise(grid):
            for a, b in zip(before, row, strict=True):
                a >> b
    top = [Node(name=f"g{g}", children=row) for g, row in enumerate(grid)]
    return Workflow(name="crossed", root=Node(name="root", parallel=True, children=top))


def _crossed_order(groups: int, leaves: int) -> list[list[int]]:
    """What each leaf of `_crossed(..., edges=True)` waits for: the leaf before it in its
    sequence and the leaf at its place in the sequence before."""
    return [[g * leaves + i - 1] * (i > 0) + [(g - 1) * leaves + i] * (g > 0)
            for g in range(groups) for i in range(leaves)]  # fmt: skip


def dependencies(ctx: Context) -> list[Figure]:
    groups, leaves = (21, 100) if not ctx.quick else (5, 10)
    edges = (groups - 1) * leaves
    with ctx.folder() as folder:
        counter = iter(range(10**6))

        def side(with_edges: bool) -> float:
            return run_engine(_crossed(groups, leaves, with_edges), folder / f"w{next(counter)}")

        planned: list[float] = []

        def crossed() -> float:
            from wtflow.dependencies import waits

            wf = _crossed(groups, leaves, True)
            start = time.perf_counter()
            waits(wf)  # what tracking the waits costs before anything runs, on its own
            planned.append(time.perf_counter() - start)
            return side(True)

        def make() -> float:
            with ctx.folder() as d:
                return _make(ctx, ["true"] * (groups * leaves), d, after=_crossed_order(groups, leaves))

        (b, w), made = _with_make(ctx, make, lambda: side(False), crossed)
    title = f"dependencies: {groups * leaves} nodes, {edges} waits across branches"
    return [Figure(title, "same tree, no waits", "s", b, w, "<= 1.1x",
                   f"waits and cycle check {sorted(planned)[len(planned) // 2] * 1000:.0f} ms, {db_note()}",
                   {"plan_seconds": planned}),
            _make_figure(ctx, title, "the same graph", made, w)]  # fmt: skip


def uneven(ctx: Context) -> list[Figure]:
    lengths = [1, 4, 12, 30] if not ctx.quick else [1, 3, 6]
    step = "sleep 0.02"
    with ctx.folder() as folder:
        counter = iter(range(10**6))
        longest = max(lengths)
        script = f"for i in $(seq {longest}); do /bin/sh -c '{step}' > o/$i.out 2> o/$i.err; done"

        def base() -> float:
            with ctx.folder() as d:
                (d / "o").mkdir()
                return bash(script, d)

        def ours() -> float:
            branches = [
                Node(name=f"b{k}", children=[_leaf(f"s{i}", step) for i in range(length)])
                for k, length in enumerate(lengths)
            ]
            wf = Workflow(name="uneven", root=Node(name="root", parallel=True, children=branches))
            return run_engine(wf, folder / f"w{next(counter)}")

        # make: the same branches, each step waiting for the one before it in its branch.
        starts = list(itertools.accumulate([0, *lengths]))
        order = [[starts[k] + i - 1] * (i > 0) for k, length in enumerate(lengths) for i in range(length)]

        def make() -> float:
            with ctx.folder() as d:
                return _make(ctx, [step] * sum(lengths), d, after=order)

        (b, w), made = _with_make(ctx, make, base, ours)
    title = f"uneven: branches of {lengths} x {step}"
    return [Figure(title, "critical path alone (bash loop)", "s", b, w, "<= 1.05x", db_note()),
            _make_figure(ctx, title, "the same branches", made, w)]  # fmt: skip


def recording(ctx: Context) -> list[Figure]:
    n = ctx.size(500, 100)
    with ctx.folder() as folder:
        counter = iter(range(10**6))
        b, w = alternate(
            ctx.reps,
            lambda: run_engine(_fan(n), folder / f"off{next(counter)}", record=False),
            lambda: run_engine(_fan(n), folder / f"on{next(counter)}", record=True),
        )
    return [
        Figure(f"recording: {n}-node fan-out, SQLite on", "same run, database off", "s", b, w, "<= 1.10x")
    ]


def dbcreate(ctx: Context) -> list[Figure]:
    """The record of a first run in a fresh checkout: creating the SQLite database (schema from
    the tables, stamped) against opening one that exists; SQLAlchemy already imported."""
    from wtflow.db import schema

    with ctx.folder() as folder:
        schema.connect(f"sqlite:///{folder / 'warm.db'}").dispose()  # the imports, paid once
        counter = iter(range(10**6))
        made: list[str] = []

        def connect(url: str) -> float:
            start = time.perf_counter()
            schema.connect(url).dispose()
            return (time.perf_counter() - start) * 1000

        def fresh() -> float:
            made.append(f"sqlite:///{folder / f'db{next(counter)}.db'}")
            return connect(made[-1])

        def existing() -> float:
            return connect(made[-1] if made else f"sqlite:///{folder / 'warm.db'}")

        b, w = alternate(max(ctx.reps, 5), existing, fresh)
    return [Figure("record: creating a fresh SQLite database", "opening an existing one", "ms", b, w,
                   "<= +20 ms", f"{w.median - b.median:+.1f} ms")]  # fmt: skip


_WTFILE = """\
import wtflow

@wtflow.workflow
def fanout():
    return wtflow.Node(name="root", parallel=True, children=[
        wtflow.Node(name=f"n{{i}}", executable=wtflow.Command(f"echo hello {{i}}")) for i in range({n})
    ])
"""


def cli(ctx: Context) -> list[Figure]:
    n = ctx.size(500, 100)
    commands = [f"echo hello {i}" for i in range(n)]
    with ctx.folder() as folder:
        (folder / "wtfile.py").write_text(_WTFILE.format(n=n))
        env = {"WTFLOW_CONSOLE": "quiet", "WTFLOW_STATE_DIR": str(folder / "state")}
        argv = [sys.executable, "-m", "wtflow", "run", "fanout"]

        def base() -> float:
            with ctx.folder() as d:
                return _xargs(ctx, commands, d)

        def ours() -> float:
            import os

            start = time.perf_counter()
            done = subprocess.run(argv, cwd=folder, env={**os.environ, **env}, capture_output=True)
            took = time.perf_counter() - start
            if done.returncode != 0:
                raise Skip(f"`{shlex.join(argv[1:])}` exited {done.returncode}: {done.stderr[-300:]!r}")
            return took

        b, w = alternate(ctx.reps, base, ours)
    return [Figure(f"CLI: `wtflow run` over a {n}-node fan-out", f"xargs -P {ctx.cores}", "s", b, w, "<= 1.2x",
                   f"includes interpreter start-up, {db_note()}")]  # fmt: skip


_ONE = """\
import wtflow

@wtflow.workflow
def one():
    return wtflow.Node(name="one", executable=wtflow.Command("true"))
"""


def wtflow_command() -> list[str]:
    """`wtflow` as users start it: the console script next to this interpreter (`python -m
    wtflow` loads runpy and more before wtflow's first line)."""
    script = Path(sys.executable).with_name("wtflow")
    return [str(script)] if script.is_file() else [sys.executable, "-m", "wtflow"]


_BIG = """\
import wtflow

@wtflow.workflow
def big():
    return wtflow.Node(name="big", executable=wtflow.Command({cmd!r}))
"""


def rawout(ctx: Context) -> list[Figure]:
    """`wtflow run` of one node printing a lot, the default raw console writing to a file, on the
    ordinary disk: the bytes go to the artifact and to the terminal, as `tee` writes them twice.
    A gigabyte, as the issue measured it: at 200 MiB the interpreter's start was a third of the run."""
    size = ctx.size(1 << 30, 16 << 20)
    cmd = f"head -c {size} /dev/zero"
    figures = []
    with ctx.folder() as folder:
        (folder / "wtfile.py").write_text(_BIG.format(cmd=cmd))
        counter = iter(range(1_000_000))

        def ours() -> float:
            env = {"WTFLOW_CONSOLE": "raw", "WTFLOW_STATE_DIR": str(folder / f"state-{next(counter)}")}
            took = _timed_run([*wtflow_command(), "run", "big"], folder, env, folder / "console")
            if (folder / "console").stat().st_size != size:
                raise RuntimeError(
                    f"rawout: the console got {(folder / 'console').stat().st_size} of {size} bytes"
                )
            return took

        for name, script, target in (
            (
                "cmd | tee artifact > file",
                f"{cmd} | tee artifact > out",
                "<= 1.11x (at least 90 % throughput)",
            ),
            ("cmd | cat > file", f"{cmd} | cat > out", "reported"),
        ):

            def base(script: str = script) -> float:
                with ctx.folder() as d:
                    return bash(script, d)

            b, w = alternate(min(ctx.reps, 3), base, ours)
            mib_s = size / (1 << 20) / w.median
            label = f"{size >> 20} MiB" if size < 1 << 30 else f"{size >> 30} GiB"
            figures.append(Figure(f"raw console: `wtflow run`, {label}, no newline", name, "s", b, w, target,
                                  f"{mib_s:.0f} MiB/s incl. start-up; {100 * b.median / w.median:.0f} % of baseline "
                                  f"throughput; files on disk, {db_note()}"))  # fmt: skip
    return figures


def _timed_run(argv: list[str], cwd: Path, env: dict[str, str], stdout: Path) -> float:
    import os

    with stdout.open("wb") as out:  # the raw console writes to a file, as under CI
        start = time.perf_counter()
        done = subprocess.run(argv, cwd=cwd, env={**os.environ, **env}, stdout=out, stderr=subprocess.PIPE)
        took = time.perf_counter() - start
    if done.returncode != 0:
        raise Skip(f"`{shlex.join(argv[1:])}` exited {done.returncode}: {done.stderr[-300:]!r}")
    return took


def cli_fixed(ctx: Context) -> list[Figure]:
    """The CLI's fixed cost, measured the way users run it: settings from WTFLOW_* only, the raw
    console writing to a file, a fresh database each run (a CI checkout), the ordinary disk."""
    figures = []
    with ctx.folder() as folder:
        (folder / "wtfile.py").write_text(_ONE)
        wtflow_argv = wtflow_command()
        bare = [sys.executable, "-c", "import subprocess; subprocess.run(['true'])"]
        counter = iter(range(1_000_000))

        def fresh_env(record: bool = True) -> dict[str, str]:
            env = {"WTFLOW_CONSOLE": "raw", "WTFLOW_STATE_DIR": str(folder / f"state-{next(counter)}")}
            return env if record else {**env, "WTFLOW_DB_URL": ""}

        def baseline() -> float:
            return _timed_run(bare, folder, {}, folder / "out")

        for label, args in (("--version", ["--version"]), ("list", ["list"])):

            def ours(args: list[str] = args) -> float:
                return _timed_run([*wtflow_argv, *args], folder, fresh_env(), folder / "out")

            b, w = alternate(ctx.reps, baseline, ours)
            figures.append(Figure(f"CLI: `wtflow {label}`", "python -c subprocess.run(['true'])", "s", b, w,
                                  "< 100 ms", f"absolute {w.median * 1000:.0f} ms"))  # fmt: skip

        def run_on() -> float:
            return _timed_run([*wtflow_argv, "run", "one"], folder, fresh_env(), folder / "out")

        def run_off() -> float:
            return _timed_run([*wtflow_argv, "run", "one"], folder, fresh_env(record=False), folder / "out")

        b, w = alternate(ctx.reps, baseline, run_on)
        figures.append(Figure("CLI: `wtflow run` of one `true`, fresh SQLite record", "python -c subprocess.run(['true'])",
                              "s", b, w, "<= 1.5x", "raw console to a file, settings from WTFLOW_*"))  # fmt: skip
        b, w = alternate(ctx.reps, run_off, run_on)
        figures.append(Figure("CLI: one `true`, fresh SQLite record", "same run, record off", "s", b, w,
                              "<= 1.5x", "first run in a fresh checkout"))  # fmt: skip
    return figures
