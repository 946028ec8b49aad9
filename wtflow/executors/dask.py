"""Runs each attempt as one task on a Dask cluster; on the worker the node runs as it does locally.

    engine ── DaskExecutor.run ── client.submit(_attempt_task, key=<the attempt>) ──> a worker thread
                                                                                       │
        start, output, end  <── scheduler <── worker.log_event(<the run's topic>) ── _Host
                                                 (one per worker process: an asyncio loop thread
                                                  with a LocalExecutor, and a reaper process)
        cancel ── client.run(_stop_attempt, token, workers=[the one running it]) ──> _Host

The engine keeps order, failure policy, retries, time limits and events; Dask only places
attempts. Its own retries are off (`retries=0`), and a task the scheduler hands to a second worker
after the first died refuses to start: it takes a Dask lock named by the attempt before the
node starts (and keeps it), so a second start finds it taken. Either way the engine hears `lost`.

Output travels as Dask log events (worker -> scheduler -> client, over the connections Dask keeps
anyway; ordered, since one worker's events share one batched stream), in pieces of at most
`PIECE` bytes: the scheduler keeps the last `distributed.admin.low-level-log-length` events of a
topic (1,000 by default), so that bounds what it holds for a run. (distributed's Pub/Sub is gone
from current releases; a Dask Queue costs a round trip per put.) The client writes each piece to
the engine's sinks as it arrives, so the artifact files grow while the node runs, in the layout of
a local run, and `wtflow logs --follow` reads them.

Imported only when a run names a scheduler: the local path never imports dask.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import itertools
import os
import pickle
import socket
import subprocess
import sys
import sysconfig
import tempfile
import threading
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

import cloudpickle
import distributed

from wtflow.errors import UsageError
from wtflow.executables import Command, PyFunc
from wtflow.executors import ExecRequest, ExecResult, Sink, StartNotice
from wtflow.executors.local import LocalExecutor, kill_token

PIECE = 64 * 1024
CONNECT_TIMEOUT = 10.0
STOP_SLACK = 10.0  # seconds past the grace a stop may take (the worker's answer travels too)
END_WAIT = 10.0  # seconds the end message may trail the task's own result
LINGER = 0.005  # seconds a worker holds messages to send them together


def _claim_name(token: str) -> str:
    return f"wtflow-claim-{token}"


def _topic(run_id: str) -> str:
    return f"wtflow-{run_id}"


def _result_of(fields: Mapping[str, Any]) -> ExecResult:
    known = {f.name for f in dataclasses.fields(ExecResult)}
    return ExecResult(**{k: v for k, v in fields.items() if k in known})


class _Attempt:
    """What the client knows of one attempt: its messages, in order, and where it runs."""

    def __init__(self) -> None:
        self.messages: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.worker: str | None = None


class DaskExecutor:
    """Hands each attempt to a dask.distributed scheduler (`tcp://host:8786`) as one task."""

    def __init__(self, address: str, *, kill_grace: float = 2.0) -> None:
        self.address = address
        self.kill_grace = kill_grace
        self._client: distributed.Client | None = None
        self._threads: int | None = None
        self._attempts: dict[str, _Attempt] = {}
        self._topics: set[str] = set()
        self._claimed: list[str] = []  # claims to drop at the end of the run, off the attempts' path
        self._opening: asyncio.Lock | None = None
        self._submissions = itertools.count(1)
        self._nonce = uuid.uuid4().hex[:8]
        self._run_ids: set[str] = set()

    @property
    def capacity(self) -> int | None:
        return self._threads  # the cluster's worker threads, once connected

    async def open(self) -> None:
        """Connect to the scheduler (before anything runs, so a bad address is a usage error)."""
        if self._client is not None:
            return
        try:
            client = await distributed.Client(
                self.address, asynchronous=True, set_as_default=False, timeout=CONNECT_TIMEOUT
            )
        except (OSError, TimeoutError, ValueError) as e:
            raise UsageError(
                f"executor {self.address!r}: cannot reach the Dask scheduler ({e}); "
                "start one with `wtflow cluster` or `dask scheduler`, or use --executor local"
            ) from None
        self._client = client
        self._threads = sum((await client.nthreads()).values()) or None

    async def _ready(self) -> distributed.Client:
        if self._opening is None:
            self._opening = asyncio.Lock()
        async with self._opening:
            await self.open()
        assert self._client is not None
        return self._client

    def _subscribe(self, client: distributed.Client, run_id: str) -> None:
        topic = _topic(run_id)
        if topic not in self._topics:
            self._topics.add(topic)
            client.subscribe_topic(topic, self._on_event)

    def _on_event(self, event: tuple[float, dict[str, Any]]) -> None:
        for msg in event[1]["m"]:
            attempt = self._attempts.get(msg["t"])
            if attempt is not None:
                attempt.messages.put_nowait(msg)

    async def run(
        self,
        request: ExecRequest,
        *,
        sinks: Mapping[str, Sink],
        on_start: Callable[[StartNotice], None],
    ) -> ExecResult:
        """Run the attempt on some worker; the result is the node's, or `lost` with the worker."""
        client = await self._ready()
        try:
            payload = _pickle(request)
        except _NotPortable as e:
            return ExecResult(error=str(e))
        a = request.attempt
        # One id per submission, for its task key, its claim and its messages: the attempt's
        # token would do, but a caller may send the same attempt twice, from one executor or from
        # several (the conformance suite), and a key must not meet a task the scheduler still has.
        token = f"{a.run_id}-{a.index}-{a.number}-{self._nonce}{next(self._submissions)}"
        resources = dict(request.resources) if request.resources else None
        missing = await _unavailable(client, resources)
        if missing:
            return ExecResult(error=missing)
        attempt = self._attempts[token] = _Attempt()
        self._subscribe(client, a.run_id)
        self._run_ids.add(a.run_id)
        future = client.submit(
            _attempt_task, payload, token, _topic(a.run_id), self.kill_grace,
            key=f"wtflow-{token}", pure=False, retries=0, resources=resources,
        )  # fmt: skip
        watcher = asyncio.ensure_future(self._watch(future, attempt))
        try:
            result = await self._follow(attempt, sinks, on_start)
        except asyncio.CancelledError:
            notice = await asyncio.shield(self._stop(client, future, token, attempt))
            if notice is not None and attempt.worker is None:
                on_start(notice)  # it had started, but the word had not come yet: the record says so
            self._claimed.append(token)  # stopped on its worker, or refused there if it comes later
            raise
        finally:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await watcher
            self._attempts.pop(token, None)
            future.release()
        if not result.lost:
            self._claimed.append(token)  # its task has ended: no second start can come
        return result

    async def _watch(self, future: distributed.Future[Any], attempt: _Attempt) -> None:
        """Put the task's own end in the queue: done (its messages said how it went), or why it
        has no result (the worker died). Its result is fetched only if its end message never came:
        fetching it costs a connection to the worker, per attempt."""
        try:
            await _ended(future)
            if future.status == "finished":
                attempt.messages.put_nowait({"k": "done", "future": future})
                return
            if future.status == "error":
                error = await future.exception()  # KilledWorker, or the task itself broke
                why = f"{type(error).__name__}: {error}"
            else:  # the scheduler dropped it: it went away, or so did our connection to it
                why = f"the scheduler says the task is {future.status}"
        except asyncio.CancelledError:
            raise
        except Exception as e:
            why = f"{type(e).__name__}: {e}"
        attempt.messages.put_nowait({"k": "failed", "why": why})

    async def _follow(
        self, attempt: _Attempt, sinks: Mapping[str, Sink], on_start: Callable[[StartNotice], None]
    ) -> ExecResult:
        started = False
        done: distributed.Future[Any] | None = None
        streams = {"o": sinks["stdout"], "e": sinks["stderr"]}
        while True:
            if done is None:
                msg = await attempt.messages.get()
            else:  # the task has ended: its end message is on its way, through the scheduler
                try:
                    async with asyncio.timeout(END_WAIT):
                        msg = await attempt.messages.get()
                except TimeoutError:
                    return _result_of((await done)["r"])
            kind = msg["k"]
            if kind in streams:
                await streams[kind].write(msg["d"])
            elif kind == "s":
                started, attempt.worker = True, msg["w"]
                on_start(StartNotice(msg["h"], msg["p"]))
            elif kind == "x":
                return _result_of(msg["r"])
            elif kind == "refused":
                return ExecResult(error=f"worker lost: {msg['why']}; not started again", lost=True)
            elif kind == "done":
                done = msg["future"]
            else:  # failed: the task has no result
                where = f" ({attempt.worker})" if attempt.worker else ""
                if started or "KilledWorker" in msg["why"]:
                    return ExecResult(error=f"worker lost{where}: {msg['why']}", lost=True)
                return ExecResult(error=f"the Dask task failed{where}: {msg['why']}")

    async def _stop(
        self, client: distributed.Client, future: distributed.Future[Any], token: str, attempt: _Attempt
    ) -> StartNotice | None:
        """Stop the node's process group on its worker (a running task's thread is not interrupted
        by cancelling its future), waiting until it has stopped; a task not started yet never will.
        Returns where it had started, if it had."""
        workers = [attempt.worker] if attempt.worker else None
        answers: dict[str, Any] = {}
        with contextlib.suppress(Exception):
            async with asyncio.timeout(self.kill_grace + STOP_SLACK):
                if workers is None:
                    await future.cancel()
                answers = await client.run(_stop_attempt, token, workers=workers)
        started = [a for a in answers.values() if a is not None]
        return StartNotice(*started[0]) if started else None

    def abandon(self) -> None:
        # A second Ctrl-C ended the loop, and the client with it, mid-stop: tell every worker
        # through a connection of our own, waiting no longer than a stop may take.
        tokens = list(self._attempts)
        self._attempts.clear()
        if not tokens:
            return

        def stop_all() -> None:
            with (
                contextlib.suppress(Exception),
                distributed.Client(self.address, timeout=CONNECT_TIMEOUT, set_as_default=False) as client,
            ):
                client.run(_stop_attempts, tokens)

        stopper = threading.Thread(target=stop_all, name="wtflow-abandon", daemon=True)
        stopper.start()
        stopper.join(self.kill_grace + STOP_SLACK)

    async def aclose(self) -> None:
        client, self._client = self._client, None
        self._topics.clear()
        self._opening = None
        if client is not None:
            run_ids, self._run_ids = sorted(self._run_ids), set()
            if run_ids:  # what left its group on a worker (setsid, a double fork) ends with the run
                with contextlib.suppress(Exception):
                    async with asyncio.timeout(self.kill_grace + STOP_SLACK):
                        await client.run(_end_runs, run_ids)
            claimed, self._claimed = self._claimed, []
            with contextlib.suppress(Exception):
                await _drop_claims(client, [_claim_name(t) for t in claimed])
            with contextlib.suppress(Exception):
                await client.close()


async def _unavailable(client: distributed.Client, resources: dict[str, float] | None) -> str | None:
    """Why no worker can take a node needing `resources` (Dask would queue it forever), or None."""
    if not resources:
        return None
    assert client.scheduler is not None
    identity = await client.scheduler.identity(n_workers=-1)
    offers = [w.get("resources") or {} for w in identity["workers"].values()]
    if any(all(offer.get(k, 0) >= v for k, v in resources.items()) for offer in offers):
        return None
    wanted = " ".join(f"{k}={v:g}" for k, v in resources.items())
    return (
        f"no worker of the cluster offers resources {wanted}; start workers that do, e.g. "
        f"`dask worker <scheduler> --resources '{wanted}'`"
    )


async def _ended(future: distributed.Future[Any]) -> None:
    """Until the task has finished, failed or been dropped, without fetching its result.

    (`distributed.wait` would do, but it works on the default client, and ours is not one.)"""
    loop = asyncio.get_running_loop()
    ended: asyncio.Future[None] = loop.create_future()

    def wake() -> None:
        if not ended.done():
            ended.set_result(None)

    future.add_done_callback(lambda _: loop.call_soon_threadsafe(wake))  # called on a thread
    await ended


async def _drop_claims(client: distributed.Client, names: list[str]) -> None:
    """Release the claims of attempts that ended: one call to the scheduler when it can import
    wtflow (as `wtflow cluster`'s can), else one release each, a few at a time."""
    if not names:
        return
    assert client.scheduler is not None
    scheduler = client.scheduler
    try:
        await client.run_on_scheduler(_release_claims, names)
    except Exception:
        limit = asyncio.Semaphore(8)

        async def release(name: str) -> None:
            async with limit:
                with contextlib.suppress(Exception):  # never taken: it never started
                    await scheduler.multi_lock_release(id=name)

        await asyncio.gather(*(release(n) for n in names))


def _release_claims(names: list[str], dask_scheduler: distributed.Scheduler) -> None:
    locks = dask_scheduler.extensions["multi_locks"]
    for name in names:
        if name in locks.requests:  # not if it never started
            locks.release(id=name)


# -- what goes over the wire -----------------------------------------------------------------


class _NotPortable(Exception):
    pass


_BY_VALUE: set[str] = set()
_INSTALLED = tuple(
    str(Path(p).resolve()) for p in {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["stdlib"]}
)


def _is_users(module: ModuleType) -> bool:
    origin = getattr(module, "__file__", None)
    installed = origin is None or str(Path(origin).resolve()).startswith(_INSTALLED)
    return not installed and module.__name__ != "__main__"  # cloudpickle sends __main__ by value anyway


def _pickle(request: ExecRequest) -> bytes:
    """The request as bytes; a PyFunc from the user's own files (a wtfile, a module beside it) goes
    by value, since the workers need not have those files; installed code goes by reference."""
    executable = request.executable
    if isinstance(executable, PyFunc):
        module = sys.modules.get(getattr(executable.func, "__module__", "") or "")
        if module is not None and _is_users(module) and module.__name__ not in _BY_VALUE:
            cloudpickle.register_pickle_by_value(module)
            _BY_VALUE.add(module.__name__)
    try:
        if isinstance(executable, Command):  # plain data: pickle is several times quicker
            return pickle.dumps(request)
        return bytes(cloudpickle.dumps(request))
    except Exception as e:
        raise _NotPortable(
            f"PyFunc {executable.describe()} cannot be sent to the Dask workers ({type(e).__name__}: {e}); "
            "make it a module-level function of a module the workers can import (installed, or on a "
            "shared path in PYTHONPATH)"
        ) from None


# -- on the worker ---------------------------------------------------------------------------


def _claim(name: str) -> bool:
    """Whether this is the attempt's first start, in one atomic call to the scheduler: a Dask lock
    (a MultiLock: unlike Lock it has no lease, so it is not freed when its holder's worker dies)
    taken under its own name as id and kept. A second start asks with the same id, which the
    scheduler refuses outright."""
    client = distributed.get_client()
    assert client.scheduler is not None
    try:
        return bool(
            client.sync(client.scheduler.multi_lock_acquire, locks=[name], id=name, timeout=0, num_locks=1)
        )
    except Exception:  # asked again under the same id, or the scheduler cannot answer: do not start
        return False


def _attempt_task(payload: bytes, token: str, topic: str, grace: float) -> dict[str, Any]:
    """The Dask task of one attempt: claim it, then run it on this worker's host and wait."""
    worker = distributed.get_worker()
    if not _claim(_claim_name(token)):
        # The scheduler handed us a task whose first worker died after starting it: it may have
        # run, so it must not run again; the engine decides on a retry.
        why = f"attempt {token} was started on a worker that is gone"
        worker.log_event(topic, {"m": [{"t": token, "k": "refused", "why": why}]})
        return {
            "r": dataclasses.asdict(ExecResult(error=f"worker lost: {why}; not started again", lost=True))
        }
    host = _Host.get()
    try:
        request: ExecRequest = cloudpickle.loads(payload)
    except Exception as e:
        fields = dataclasses.asdict(ExecResult(error=_import_error(e, worker.address)))
        worker.log_event(topic, {"m": [{"t": token, "k": "x", "r": fields}]})
        return {"r": fields}
    job = asyncio.run_coroutine_threadsafe(host.attempt(request, token, topic, worker, grace), host.loop)
    return {"r": job.result()}


def _import_error(error: Exception, where: str) -> str:
    return (
        f"the node cannot be loaded on worker {where} ({type(error).__name__}: {error}); install its "
        "module on the workers or put it on a shared path (PYTHONPATH of the workers)"
    )


async def _stop_attempt(token: str) -> tuple[str, int | None] | None:
    """Run on a worker's event loop by `client.run`: stop that attempt if it runs here (and say
    where it had started), and keep it from starting if it has not yet."""
    host = _Host.get()
    return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(host.stop(token), host.loop))


class _Outbox:
    """Messages to the clients, held for up to LINGER seconds and sent as one log event per topic:
    a short node's start, output and end cost the scheduler and the client one event, not three."""

    def __init__(self, loop: asyncio.AbstractEventLoop, worker: distributed.Worker) -> None:
        self._loop, self._worker = loop, worker
        self._held: dict[str, list[dict[str, Any]]] = {}
        self._size = 0
        self._flush_at: asyncio.TimerHandle | None = None

    def send(self, topic: str, msg: dict[str, Any], *, now: bool = False) -> None:
        self._held.setdefault(topic, []).append(msg)
        self._size += len(msg.get("d", b""))
        if now or self._size >= PIECE:
            self.flush()
        elif self._flush_at is None:
            self._flush_at = self._loop.call_later(LINGER, self.flush)

    def flush(self) -> None:
        if self._flush_at is not None:
            self._flush_at.cancel()
            self._flush_at = None
        for topic, msgs in self._held.items():
            self._worker.log_event(topic, {"m": msgs})
        self._held.clear()
        self._size = 0


async def _end_runs(run_ids: list[str]) -> None:
    """Run on every worker by `client.run` at the end of a run: the sweep a LocalExecutor does at
    its aclose(), for these runs only (the worker's executor lives on for the next run)."""
    await asyncio.gather(*(asyncio.to_thread(kill_token, run_id) for run_id in run_ids))


async def _stop_attempts(tokens: list[str]) -> None:
    await asyncio.gather(*(_stop_attempt(t) for t in tokens))


class _Sink:
    def __init__(self, outbox: _Outbox, topic: str, token: str, kind: str) -> None:
        self._outbox, self._topic, self._token, self._kind = outbox, topic, token, kind

    async def write(self, data: bytes) -> None:
        for at in range(0, len(data), PIECE):
            self._outbox.send(self._topic, {"t": self._token, "k": self._kind, "d": data[at : at + PIECE]})


class _Host:
    """One per worker process: a thread with an event loop where nodes run under a LocalExecutor
    (its process groups, TERM -> grace -> KILL, token sweep), and the reaper that ends them if
    the worker dies."""

    _instance: _Host | None = None
    _lock = threading.Lock()

    @classmethod
    def get(cls) -> _Host:
        with cls._lock:
            if cls._instance is None:
                cls._instance = cls()
            return cls._instance

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.hostname = socket.gethostname()
        self._executors: dict[float, LocalExecutor] = {}
        self._running: dict[str, asyncio.Task[Any]] = {}
        self._stopped: set[str] = set()
        self._started: dict[str, tuple[str, int | None]] = {}
        self._box: _Outbox | None = None
        read, self._reaper_pipe = os.pipe()  # both close-on-exec: only the reaper gets the read end
        self._reaper = subprocess.Popen(
            [sys.executable, "-m", "wtflow.executors._reaper"],
            stdin=read,
            start_new_session=True,
        )
        os.close(read)
        threading.Thread(target=self.loop.run_forever, name="wtflow-nodes", daemon=True).start()

    def _outbox(self, worker: distributed.Worker) -> _Outbox:
        if self._box is None:
            self._box = _Outbox(self.loop, worker)
        return self._box

    def _tell_reaper(self, line: str) -> None:
        os.write(self._reaper_pipe, line.encode())

    async def attempt(
        self, request: ExecRequest, token: str, topic: str, worker: distributed.Worker, grace: float
    ) -> dict[str, Any]:
        if token in self._stopped:
            self._stopped.discard(token)
            return dataclasses.asdict(ExecResult(error="stopped before it started"))
        task = asyncio.current_task()
        assert task is not None
        self._running[token] = task
        try:
            result = await self._run(request, token, topic, worker, grace)
        except asyncio.CancelledError:
            # Stopped by the client (_stop_attempt), whose own run() raises: this task ends with a
            # report instead, so the worker logs no error.
            result = ExecResult(error="stopped")
        finally:
            self._running.pop(token, None)
        fields = dataclasses.asdict(result)
        self._outbox(worker).send(topic, {"t": token, "k": "x", "r": fields}, now=True)
        return fields

    async def _run(
        self, request: ExecRequest, token: str, topic: str, worker: distributed.Worker, grace: float
    ) -> ExecResult:
        executor = self._executors.get(grace)
        if executor is None:
            executor = self._executors[grace] = LocalExecutor(kill_grace=grace)
        request, pickled = _as_spawned(request)
        groups: list[int] = []

        def on_start(notice: StartNotice) -> None:
            if notice.pid is not None:
                groups.append(notice.pid)
                self._tell_reaper(f"+{notice.pid} {request.attempt.token}\n")
            host = f"{self.hostname} ({worker.address})"
            self._started[token] = (host, notice.pid)
            start = {"t": token, "k": "s", "h": host, "p": notice.pid, "w": worker.address}
            self._outbox(worker).send(topic, start)

        outbox = self._outbox(worker)
        sinks = {"stdout": _Sink(outbox, topic, token, "o"), "stderr": _Sink(outbox, topic, token, "e")}
        try:
            return await executor.run(request, sinks=sinks, on_start=on_start)
        finally:
            self._started.pop(token, None)
            for pgid in groups:
                self._tell_reaper(f"-{pgid}\n")
            if pickled is not None:
                pickled.unlink(missing_ok=True)

    async def stop(self, token: str) -> tuple[str, int | None] | None:
        task = self._running.get(token)
        if task is None:
            self._stopped.add(token)  # its task may not have reached us yet
            return None
        started = self._started.get(token)
        task.cancel()
        await asyncio.wait([task])
        return started


def _as_spawned(request: ExecRequest) -> tuple[ExecRequest, Path | None]:
    """A PyFunc becomes a fresh interpreter running it (see _spawned): a worker has threads, and
    forking a threaded process for user code is how locks end up held forever in the child."""
    executable = request.executable
    if not isinstance(executable, PyFunc):
        return request, None
    fd, name = tempfile.mkstemp(prefix="wtflow-pyfunc-", suffix=".pickle")
    with os.fdopen(fd, "wb") as f:
        f.write(cloudpickle.dumps(executable))
    command = Command([sys.executable, "-m", "wtflow.executors._spawned", name])
    return dataclasses.replace(request, executable=command), Path(name)
