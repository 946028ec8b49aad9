"""`wtflow cluster`: a Dask scheduler and N worker processes on this machine, to try runs on.

    wtflow cluster --workers 2          prints the scheduler's address, runs until Ctrl-C
    wtflow run --executor tcp://127.0.0.1:8786

dask.distributed is imported only when the command runs (the CLI's start-up does not pay for it).
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from types import FrameType

from wtflow.commands.record import positive
from wtflow.config import Config
from wtflow.errors import UsageError

_EPILOG = """\
examples:
  wtflow cluster                       a scheduler on 127.0.0.1:8786 and 2 workers, 1 thread each
  wtflow cluster --workers 4 --threads 2 --host 0.0.0.0 --port 8786
then, in another terminal of the same machine (or one that reaches it):
  wtflow run --executor tcp://127.0.0.1:8786"""


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `wtflow cluster`; it sets `handler(args, config) -> int` as its default."""
    parser = subparsers.add_parser(
        "cluster", help="start a local Dask scheduler and workers to run on (needs wtflow[dask])",
        description="Start a Dask scheduler and worker processes here; print the address; run until Ctrl-C.",
        epilog=_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    parser.add_argument(
        "--workers", type=positive, default=2, metavar="N", help="worker processes (default 2)"
    )
    parser.add_argument(
        "--threads", type=positive, default=1, metavar="N", help="threads per worker (default 1)"
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument(
        "--port", type=int, default=8786, help="scheduler port (default 8786; 0: any free one)"
    )
    parser.set_defaults(handler=cmd_cluster)


def cmd_cluster(args: argparse.Namespace, config: Config) -> int:
    if not args.verbose:  # read by the worker processes as they start, and by this one on import
        os.environ.setdefault("DASK_LOGGING__DISTRIBUTED", "warning")
    # The scheduler keeps the last events of every topic; a run's output goes through one.
    os.environ.setdefault("DASK_DISTRIBUTED__ADMIN__LOW_LEVEL_LOG_LENGTH", "100")
    try:
        import distributed
    except ImportError:
        raise UsageError(
            "wtflow cluster needs dask.distributed, which is missing; pip install 'wtflow[dask]'"
        ) from None
    if not args.verbose:
        logging.getLogger("distributed").setLevel(logging.WARNING)
    # Workers start with this process's import path: PyFuncs of modules beside the wtfile, with
    # the cluster started from the project's folder, import there as they do locally.
    sys.path.insert(0, os.getcwd())
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    # Ctrl-C reaches the terminal's whole process group: the workers start with SIGINT ignored
    # (kept across exec), so they are stopped in order by the cluster below, not mid-task by it.
    previous = {sig: signal.signal(sig, signal.SIG_IGN) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        try:
            cluster = distributed.LocalCluster(  # type: ignore[no-untyped-call]
                n_workers=args.workers, threads_per_worker=args.threads, processes=True,
                host=args.host, scheduler_port=args.port, dashboard_address=":0",  # any free port
            )  # fmt: skip
        except OSError as e:
            raise UsageError(
                f"port {args.port} on {args.host}: cannot listen ({e.strerror or e}); "
                "choose another with --port, or --port 0 for any free one"
            ) from None
        for sig in previous:
            signal.signal(sig, on_signal)
        with cluster:
            address = cluster.scheduler_address
            threads = "thread" if args.threads == 1 else "threads"
            sys.stdout.write(
                f"scheduler {address}\nworkers   {args.workers} x {args.threads} {threads}\n"
                f"use       wtflow run --executor {address}\n"
                "Ctrl-C stops the cluster.\n"
            )
            sys.stdout.flush()
            stop.wait()
        return 0
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
