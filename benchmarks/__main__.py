"""`python -m benchmarks`: run the workloads, print the table, save the JSON."""

from __future__ import annotations

import argparse
import compileall
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path

import wtflow
from benchmarks import cluster, output, pyfuncs, shell
from benchmarks.harness import Context, Figure, Skip, creation_ms, table, write_json

WORKLOADS: dict[str, Callable[[Context], list[Figure]]] = {
    "fanout": shell.fanout,
    "chain": shell.chain,
    "bigout": output.bigout,
    "recording": shell.recording,
    "pyfuncs": pyfuncs.pyfuncs,
    "bigtree": shell.bigtree,
    "deps": shell.dependencies,
    "uneven": shell.uneven,
    "latency": output.latency,
    "memory": output.memory,
    "cli": shell.cli,
    "dask": cluster.dask,
    "cli-fixed": shell.cli_fixed,
    "rawout": shell.rawout,
    "dbcreate": shell.dbcreate,
}

RESULTS = Path(__file__).parent / "results"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes, 2 repetitions: a smoke pass")
    parser.add_argument("--only", action="append", choices=sorted(WORKLOADS), metavar="NAME",
                        help=f"run only this workload (repeatable): {', '.join(WORKLOADS)}")  # fmt: skip
    parser.add_argument("--reps", type=int, help="repetitions of each side (default: 5, --quick: 2)")
    parser.add_argument(
        "--out", type=Path, default=RESULTS, help="folder for the JSON (default: %(default)s)"
    )
    args = parser.parse_args(argv)
    reps = args.reps or (2 if args.quick else 5)
    chosen = args.only or list(WORKLOADS)
    figures: list[Figure] = []
    failed = False
    start = time.perf_counter()
    # Users' installs compile bytecode (the README's setup); an editable checkout under
    # PYTHONDONTWRITEBYTECODE=1 would otherwise compile wtflow again in every `wtflow` started.
    compileall.compile_dir(Path(wtflow.__file__).parent, quiet=1)
    with tempfile.TemporaryDirectory(prefix="wtflow-bench-") as scratch:
        ctx = Context(quick=args.quick, reps=reps, scratch=Path(scratch))
        disk = {"creation_ms_before": round(creation_ms(ctx.scratch), 3)}
        for name in chosen:
            print(f"-- {name} ...", file=sys.stderr, flush=True)
            began = time.perf_counter()
            try:
                figures += WORKLOADS[name](ctx)
            except Skip as e:
                figures.append(Figure(name, "", "s", None, None, skipped=str(e)))
            except Exception:
                traceback.print_exc()
                failed = True
            print(f"   {time.perf_counter() - began:.1f} s", file=sys.stderr, flush=True)
        disk["creation_ms_after"] = round(creation_ms(ctx.scratch), 3)
    seconds = time.perf_counter() - start
    print(table(figures))
    path = write_json(
        figures, args.out, quick=args.quick, seconds=seconds, partial=bool(args.only), disk=disk
    )
    print(
        f"\n{len(figures)} figures in {seconds:.0f} s; a folder and two files took "
        f"{disk['creation_ms_before']:.2f} ms before, {disk['creation_ms_after']:.2f} ms after; saved {path}",
        file=sys.stderr,
    )
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
