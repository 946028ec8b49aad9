"""Runs each attempt as one task on a Dask cluster; on the worker the node runs as it does locally.

    engine ── DaskExecutor.run ── client.map(_attempt_task, keys=<the attempts of one turn>) ──> a worker
                                                                     (a coroutine on its event loop)
        start, output, stopping, end  <── scheduler <── worker.log_event(<the run's topic>) ── _Host
                                                     (one per worker: a LocalExecutor, whose
                                                      watchdog ends the nodes if the worker dies)
        cancel ── client.run(_stop_attempt, token, workers=[the one running it]) ──> _Host

The engine keeps order, failure policy, retries, time limits and events; Dask only places
attempts. Its own retries are off (`retries=0`), and a task the scheduler hands to a second worker
after the first died refuses to start: it takes a Dask lock named by the attempt before the
node starts (and keeps it until the task has ended), so a second start finds it taken. Either way
the engine hears `lost`.

Output travels as Dask log events (worker -> scheduler -> client, over the connections Dask keeps
anyway; ordered, since one worker's events share one batched stream), in pieces of at most
`PIECE` bytes: the scheduler keeps the last `distributed.admin.low-level-log-length` events of a
topic (1,000 by default), so that bounds what it holds for a run. (distributed's Pub/Sub is gone
from current releases; a Dask Queue costs a round trip per put.) The client writes each piece to
the engine's sinks as it arrives, so the artifact files grow while the node runs, in the layout of
a local run, and `wtflow logs --follow` reads them. Every WINDOW / 2 bytes written, the client
tells the worker (`client.run`), which sends no more than WINDOW bytes ahead: back-pressure.

Imported only when a run names a scheduler: the local path never imports dask.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import itertools
import os
import pickle
import signal
import socket
import sys
import sysconfig
import tempfile
import threading
import uuid
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from types import ModuleType
from typing import Any, ClassVar

import cloudpickle
import distributed

from wtflow.errors import UsageError
from wtflow.executables import Command, PyFunc
from wtflow.executors import ExecRequest, ExecResult, OnStopping, Sink, StartNotice, _on_scheduler
from wtflow.executors.local import LocalExecutor, _signal_group, kill_token

PIECE = 64 * 1024
CONNECT_TIMEOUT = 10.0
STOP_SLACK = 10.0  # seconds past the grace a stop may take (the worker's answer travels too)
END_WAIT = 10.0  # seconds the end message may trail the task's own result
LINGER = 0.005  # seconds a worker holds messages to send them together
SUBMIT_LINGER = 0.005  # seconds the client holds submissions to send them together
# Bytes of one attempt's output a worker sends ahead of the client's word that it has written
# them; the client says so every half of it. Past it the node's pipe fills and the node waits,
# as it would for a slow disk locally: the buffers on the way (worker, scheduler, client) stay
# bounded however fast a node prints.
WINDOW = 8 * 1024 * 1024
ABANDONED_MARKERS_KEPT = 600.0  # seconds a worker keeps an abandoned run's attempts from starting


def _claim_name(token: str) -> str:
    return f"wtflow-claim-{token}"


def _topic(run_id: str) -> str:
    return f"wtflow-{run_id}"


def _result_of(fields: Mapping[str, Any]) -> ExecResult:
    known = {f.name for f in dataclasses.fields(ExecResult)}
    return ExecResult(**{k: v for k, v in fields.items() if k in known})


def _unheard(reason: str) -> None:
    pass


def _settled(pending: set[asyncio.Future[Any]]) -> Callable[[asyncio.Future[Any]], None]:
    def forget(done: asyncio.Future[Any]) -> None:
        pending.discard(done)
        if not done.cancelled():
            done.exception()  # an ack lost with its worker is nobody's concern: the attempt is lost too

    return forget


class _Attempt:
    """What the client knows of one attempt: its messages, in order, where it runs, and its task
    once submitted (with the watcher that puts the task's own end among the messages)."""

    def __init__(self, args: tuple[Any, ...], key: str, resources: dict[str, float] | None) -> None:
        self.args, self.key, self.resources = args, key, resources
        self.written = self.acked = 0  # bytes of its output written to the sinks, and said so
        self.messages: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.worker: str | None = None
        self.future: distributed.Future[Any] | None = None
        self.watcher: asyncio.Future[None] | None = None


class _Submissions:
    """The attempts submitted in one turn of the event loop go to the scheduler together, as one
    `Client.map` (one graph, one update-graph message, one pass of Dask's graph machinery): Dask
    costs more per graph than per task in it, and a fan-out starts its attempts in bursts."""

    def __init__(self, client: distributed.Client, watch: Callable[[_Attempt], Awaitable[None]]) -> None:
        self._client, self._watch = client, watch
        self._pending: list[_Attempt] = []

    def add(self, attempt: _Attempt) -> None:
        if not self._pending:
            asyncio.get_running_loop().call_later(SUBMIT_LINGER, self._flush)
        self._pending.append(attempt)

    def withdraw(self, attempt: _Attempt) -> bool:
        """Take back an attempt not yet sent; False if it has gone."""
        if attempt in self._pending:
            self._pending.remove(attempt)
            return True
        return False

    def _flush(self) -> None:
        pending, self._pending = self._pending, []
        alike: dict[tuple[tuple[str, float], ...], list[_Attempt]] = {}
        for attempt in pending:  # one map per set of resources asked for
            alike.setdefault(tuple(sorted((attempt.resources or {}).items())), []).append(attempt)
        for attempts in alike.values():
            try:
                futures = self._client.map(
                    _attempt_task, *zip(*(a.args for a in attempts), strict=True), key=[a.key for a in attempts],
                    pure=False, retries=0, resources=attempts[0].resources, batch_size=None,
                )  # fmt: skip
            except Exception as e:
                for attempt in attempts:
                    attempt.messages.put_nowait({"k": "failed", "why": f"{type(e).__name__}: {e}"})
                continue
            for attempt, future in zip(attempts, futures, strict=True):
                attempt.future = future
                attempt.watcher = asyncio.ensure_future(self._watch(attempt))


class DaskExecutor:
    """Hands each attempt to a dask.distributed scheduler (`tcp://host:8786`) as one task."""

    def __init__(self, address: str, *, kill_grace: float = 2.0) -> None:
        self.address = address
        self.kill_grace = kill_grace
        self._client: distributed.Client | None = None
        self._threads: int | None = None
        self._attempts: dict[str, _Attempt] = {}
        self._topics: set[str] = set()
        # Claims of ended attempts, (name, holder), dropped at the end of the run, off the path of
        # the attempts; the holder is the worker's id for it, when we know it.
        self._claims: list[tuple[str, str | None]] = []
        self._opening: asyncio.Lock | None = None
        self._batch: _Submissions | None = None
        self._abandoned: set[str] = set()  # attempts whose stop was cut short
        self._acks: set[asyncio.Future[Any]] = set()
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
        on_stopping: OnStopping | None = None,
    ) -> ExecResult:
        """Run the attempt on some worker; the result is the node's, or `lost` with the worker.

        `on_stopping` hears the worker start stopping it at its time limit, and this side start
        stopping it when cancelled (before the stop goes out: it shows during the kill grace)."""
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
        args = (payload, token, _topic(a.run_id), self.kill_grace)
        attempt = self._attempts[token] = _Attempt(args, f"wtflow-{token}", resources)
        self._subscribe(client, a.run_id)
        self._run_ids.add(a.run_id)
        if self._batch is None:
            self._batch = _Submissions(client, self._watch)
        self._batch.add(attempt)
        ended = True  # whether the task has ended (no copy of it can start any more)
        try:
            result = await self._follow(attempt, sinks, on_start, on_stopping or _unheard)
            if result.lost and attempt.watcher is not None:
                # Refused by a copy, or KilledWorker: the task ends now, or has. Until it has, a
                # copy may come again (the refusing worker may die too), and the claim must stay.
                await asyncio.wait([attempt.watcher], timeout=END_WAIT)
                ended = attempt.future is not None and attempt.future.done()
        except asyncio.CancelledError:
            if attempt.worker is not None and on_stopping is not None:
                on_stopping("cancelled")
            if not self._batch.withdraw(attempt):
                try:
                    notice = await asyncio.shield(self._stop(client, token, attempt))
                except asyncio.CancelledError:
                    self._abandoned.add(
                        token
                    )  # cancelled again mid-stop (a second Ctrl-C): abandon() ends it
                    raise
                if notice is not None:
                    on_start(notice)  # it had started, but the word had not come yet: the record says so
            raise  # stopped on its worker, or refused there if it comes later: its claim can go
        finally:
            if attempt.watcher is not None:
                attempt.watcher.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await attempt.watcher
            self._attempts.pop(token, None)
            if attempt.future is not None:
                attempt.future.release()
            if ended:
                holder = _holder(_claim_name(token), attempt.worker) if attempt.worker else None
                self._claims.append((_claim_name(token), holder))
        return result

    async def _watch(self, attempt: _Attempt) -> None:
        """Put the task's own end in the queue: done (its messages said how it went), or why it
        has no result (the worker died). Its result is fetched only if its end message never came:
        fetching it costs a connection to the worker, per attempt."""
        future = attempt.future
        assert future is not None
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
        self,
        attempt: _Attempt,
        sinks: Mapping[str, Sink],
        on_start: Callable[[StartNotice], None],
        on_stopping: OnStopping,
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
                attempt.written += len(msg["d"])
                if attempt.written - attempt.acked >= WINDOW // 2 and attempt.worker is not None:
                    self._ack(attempt, msg["t"])
            elif kind == "s":
                started, attempt.worker = True, msg["w"]
                on_start(StartNotice(msg["h"], msg["p"]))
            elif kind == "z":
                on_stopping(msg["why"])
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

    def _ack(self, attempt: _Attempt, token: str) -> None:
        """Tell the worker how much of the attempt's output is written, off the path of the output."""
        client, worker = self._client, attempt.worker
        if client is None or worker is None:
            return
        attempt.acked = attempt.written
        ack = asyncio.ensure_future(client.run(_written, token, attempt.written, workers=[worker]))
        self._acks.add(ack)
        ack.add_done_callback(_settled(self._acks))

    async def _stop(self, client: distributed.Client, token: str, attempt: _Attempt) -> StartNotice | None:
        """Stop the node's process group on its worker (cancelling a running task's future does not
        stop it), waiting until it has stopped; a task not started yet never will. Returns where
        it had started, if it had and the word of it had not come yet."""
        workers = [attempt.worker] if attempt.worker else None
        answers: dict[str, Any] = {}
        with contextlib.suppress(Exception):
            async with asyncio.timeout(self.kill_grace + STOP_SLACK):
                # Every worker first hears that it must not start it (or stops it, where it has
                # just started), and only then is the task dropped: the other way round, a worker
                # could start it in between, and nobody would be waiting for it any more.
                answers = await client.run(_stop_attempt, token, workers=workers)
                if workers is None and attempt.future is not None:
                    await attempt.future.cancel()
        if attempt.worker is not None:
            return None
        for worker, started in answers.items():
            if started is not None:
                attempt.worker = worker
                return StartNotice(*started)
        return None

    def hurry(self) -> None:
        # The stops under way wait for the workers' answers on the loop: not held up for this.
        self._kill_everywhere()

    def abandon(self) -> None:
        # A second Ctrl-C ended the loop, and the client with it, mid-stop.
        killer = self._kill_everywhere()
        self._attempts.clear()
        self._abandoned.clear()
        if killer is not None:
            killer.join(CONNECT_TIMEOUT + STOP_SLACK)

    def _kill_everywhere(self) -> threading.Thread | None:
        """Through a connection of our own, every worker kills these runs' processes at once (no
        grace: the user asked twice) and keeps their attempts still on their way from starting."""
        tokens = sorted({*self._attempts, *self._abandoned})
        if not tokens:
            return None
        run_ids = sorted(self._run_ids)

        def kill_all() -> None:
            with (
                contextlib.suppress(Exception),
                distributed.Client(self.address, timeout=CONNECT_TIMEOUT, set_as_default=False) as client,
            ):
                client.run(_abandon_runs, run_ids, tokens)

        killer = threading.Thread(target=kill_all, name="wtflow-abandon", daemon=True)
        killer.start()
        return killer

    async def aclose(self) -> None:
        client, self._client = self._client, None
        self._batch = None
        self._topics.clear()
        self._opening = None
        if client is not None:
            run_ids, self._run_ids = sorted(self._run_ids), set()
            if run_ids:  # what left its group on a worker (setsid, a double fork) ends with the run
                with contextlib.suppress(Exception):
                    async with asyncio.timeout(self.kill_grace + STOP_SLACK):
                        await client.run(_end_runs, run_ids)
            claims, self._claims = self._claims, []
            with contextlib.suppress(Exception):
                await _drop_claims(client, claims)
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


async def _drop_claims(client: distributed.Client, claims: list[tuple[str, str | None]]) -> None:
    """Release the claims of attempts that ended: one call to the scheduler (the function goes by
    value, so the scheduler needs no wtflow), else one release each, a few at a time."""
    if not claims:
        return
    assert client.scheduler is not None
    scheduler = client.scheduler
    try:
        await client.run_on_scheduler(_on_scheduler.release_claims, [name for name, _ in claims])
    except Exception:  # the scheduler takes no pickled functions (distributed.scheduler.pickle)
        limit = asyncio.Semaphore(8)

        async def release(holder: str) -> None:
            async with limit:
                with contextlib.suppress(Exception):  # never taken: it never started
                    await scheduler.multi_lock_release(id=holder)

        await asyncio.gather(*(release(holder) for _, holder in claims if holder is not None))


# -- what goes over the wire -----------------------------------------------------------------


class _NotPortable(Exception):
    pass


_BY_VALUE: set[str] = {_on_scheduler.__name__}
cloudpickle.register_pickle_by_value(_on_scheduler)
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


async def _attempt_task(payload: bytes, token: str, topic: str, grace: float) -> dict[str, Any]:
    """The Dask task of one attempt. A coroutine: Dask runs it on the worker's own event loop
    (still one of the worker's threads' worth of capacity), where the node runs under a
    LocalExecutor; a thread per task and a loop of our own cost more than the node itself."""
    return await _Host.of(distributed.get_worker()).attempt(payload, token, topic, grace)


async def _claim(worker: distributed.Worker, name: str) -> bool:
    """Whether this is the attempt's first start, in one call to the scheduler: a Dask lock (a
    MultiLock: unlike Lock it has no lease, so it is not freed when its holder's worker dies)
    taken and kept, under an id of this worker's. A copy handed to another worker after the first
    died finds it taken, and the scheduler says no at once (timeout 0)."""
    try:
        taken = await worker.scheduler.multi_lock_acquire(
            locks=[name], id=_holder(name, worker.address), timeout=0, num_locks=1
        )
    except Exception:  # the scheduler cannot answer (or this worker asked before): do not start
        return False
    return bool(taken)


def _holder(name: str, worker: str) -> str:
    return f"{name}@{worker}"


def _import_error(error: Exception, where: str) -> str:
    return (
        f"the node cannot be loaded on worker {where} ({type(error).__name__}: {error}); install its "
        "module on the workers or put it on a shared path (PYTHONPATH of the workers)"
    )


async def _stop_attempt(token: str, dask_worker: distributed.Worker) -> tuple[str, int | None] | None:
    """Run on a worker's event loop by `client.run`: stop that attempt if it runs here (and say
    where it had started), and keep it from starting if it has not yet."""
    return await _Host.of(dask_worker).stop(token)


async def _written(token: str, written: int, dask_worker: distributed.Worker) -> None:
    """Run on the attempt's worker by `client.run`: the client has written this much of its output."""
    _Host.of(dask_worker).ack(token, written)


async def _abandon_runs(run_ids: list[str], tokens: list[str], dask_worker: distributed.Worker) -> None:
    """Run on every worker when the client gave up waiting (a second Ctrl-C): these attempts never
    start here, and every process of these runs on this machine is killed now."""
    host = _Host.of(dask_worker)
    host.abandon(tokens)
    # The client is going, and the scheduler drops its tasks when it has: the markers are needed
    # only for a task already on its way here.
    asyncio.get_running_loop().call_later(ABANDONED_MARKERS_KEPT, host.forget, run_ids)
    await asyncio.gather(*(asyncio.to_thread(kill_token, run_id) for run_id in run_ids))


async def _end_runs(run_ids: list[str], dask_worker: distributed.Worker) -> None:
    """Run on every worker by `client.run` at the end of a run: the sweep a LocalExecutor does at
    its aclose(), for these runs only (the worker's executor lives on for the next run)."""
    _Host.of(dask_worker).forget(run_ids)
    await asyncio.gather(*(asyncio.to_thread(kill_token, run_id) for run_id in run_ids))


class _Outbox:
    """Messages to the clients, held for up to LINGER seconds and sent as one log event per topic:
    a short node's start, output and end cost the scheduler and the client one event, not three."""

    def __init__(self, worker: distributed.Worker) -> None:
        self._worker = worker
        self._held: dict[str, list[dict[str, Any]]] = {}
        self._size = 0
        self._flush_at: asyncio.TimerHandle | None = None

    def send(self, topic: str, msg: dict[str, Any], *, now: bool = False) -> None:
        self._held.setdefault(topic, []).append(msg)
        self._size += len(msg.get("d", b""))
        if now or self._size >= PIECE:
            self.flush()
        elif self._flush_at is None:
            self._flush_at = asyncio.get_running_loop().call_later(LINGER, self.flush)

    def flush(self) -> None:
        if self._flush_at is not None:
            self._flush_at.cancel()
            self._flush_at = None
        for topic, msgs in self._held.items():
            self._worker.log_event(topic, {"m": msgs})  # on the worker's loop: straight to its stream
        self._held.clear()
        self._size = 0


class _Window:
    """How far one attempt's output has got: sent by the worker, and written by the client."""

    def __init__(self) -> None:
        self.sent = self.written = 0
        self._moved = asyncio.Event()

    async def sent_more(self, size: int) -> None:
        self.sent += size
        while self.sent - self.written > WINDOW:
            self._moved.clear()
            await self._moved.wait()

    def acked(self, written: int) -> None:
        if written > self.written:
            self.written = written
            self._moved.set()


class _Sink:
    def __init__(self, outbox: _Outbox, window: _Window, topic: str, token: str, kind: str) -> None:
        self._outbox, self._window = outbox, window
        self._topic, self._token, self._kind = topic, token, kind

    async def write(self, data: bytes) -> None:
        for at in range(0, len(data), PIECE):
            piece = data[at : at + PIECE]
            self._outbox.send(self._topic, {"t": self._token, "k": self._kind, "d": piece})
            await self._window.sent_more(len(piece))


class _Host:
    """One per worker: its nodes run on the worker's event loop under a LocalExecutor (process
    groups, TERM -> grace -> KILL, the token sweep, and the watchdog that ends them if the worker
    dies, naming only this worker's attempts: the other workers of this machine run the same runs)."""

    _hosts: ClassVar[dict[str, _Host]] = {}

    @classmethod
    def of(cls, worker: distributed.Worker) -> _Host:
        host = cls._hosts.get(worker.address)
        if host is None:
            host = cls._hosts[worker.address] = cls(worker)
        return host

    def __init__(self, worker: distributed.Worker) -> None:
        self.worker = worker
        self.where = f"{socket.gethostname()} ({worker.address})"
        self.outbox = _Outbox(worker)
        self._executors: dict[float, LocalExecutor] = {}
        self._running: dict[str, asyncio.Task[ExecResult]] = {}
        self._stopped: set[str] = set()  # stopped before their task came here
        self._started: dict[str, int | None] = {}
        self._windows: dict[str, _Window] = {}

    def ack(self, token: str, written: int) -> None:
        window = self._windows.get(token)
        if window is not None:
            window.acked(written)

    def forget(self, run_ids: list[str]) -> None:
        """The runs ended: drop the stop markers of their attempts that never came here."""
        prefixes = tuple(f"{run_id}-" for run_id in run_ids)
        self._stopped = {t for t in self._stopped if not t.startswith(prefixes)}

    async def attempt(self, payload: bytes, token: str, topic: str, grace: float) -> dict[str, Any]:
        if token in self._stopped:
            self._stopped.discard(token)
            return dataclasses.asdict(ExecResult(error="stopped before it started"))
        if not await _claim(self.worker, _claim_name(token)):
            # The scheduler handed us a task whose first worker died after starting it: it may
            # have run, so it must not run again; the engine decides on a retry.
            why = f"attempt {token} was started on a worker that is gone"
            self.outbox.send(topic, {"t": token, "k": "refused", "why": why}, now=True)
            return dataclasses.asdict(ExecResult(error=f"worker lost: {why}; not started again", lost=True))
        if token in self._stopped:  # stopped while it asked
            self._stopped.discard(token)
            return dataclasses.asdict(ExecResult(error="stopped before it started"))
        try:
            request: ExecRequest = cloudpickle.loads(payload)
        except Exception as e:
            fields = dataclasses.asdict(ExecResult(error=_import_error(e, self.worker.address)))
            self.outbox.send(topic, {"t": token, "k": "x", "r": fields}, now=True)
            return fields
        job = asyncio.ensure_future(self._run(request, token, topic, grace))
        self._running[token] = job
        try:
            result = await asyncio.shield(job)
        except asyncio.CancelledError:
            if not job.done():  # Dask cancelled the task (the worker is closing): the node ends too
                job.cancel()
                await asyncio.wait([job])
                raise
            # Stopped by the client (stop()), whose own run() raises: this task ends with a
            # report instead, so the worker logs no error.
            result = ExecResult(error="stopped")
        finally:
            self._running.pop(token, None)
        fields = dataclasses.asdict(result)
        self.outbox.send(topic, {"t": token, "k": "x", "r": fields}, now=True)
        return fields

    async def _run(self, request: ExecRequest, token: str, topic: str, grace: float) -> ExecResult:
        executor = self._executors.get(grace)
        if executor is None:
            executor = self._executors[grace] = LocalExecutor(kill_grace=grace, own_runs=False)
        request, pickled = _as_spawned(request)

        def on_start(notice: StartNotice) -> None:
            self._started[token] = notice.pid
            start = {"t": token, "k": "s", "h": self.where, "p": notice.pid, "w": self.worker.address}
            self.outbox.send(topic, start)

        def on_stopping(reason: str) -> None:
            self.outbox.send(topic, {"t": token, "k": "z", "why": reason}, now=True)

        window = self._windows[token] = _Window()
        sinks = {
            "stdout": _Sink(self.outbox, window, topic, token, "o"),
            "stderr": _Sink(self.outbox, window, topic, token, "e"),
        }
        try:
            return await executor.run(request, sinks=sinks, on_start=on_start, on_stopping=on_stopping)
        finally:
            self._started.pop(token, None)
            self._windows.pop(token, None)
            if pickled is not None:
                pickled.unlink(missing_ok=True)

    def abandon(self, tokens: list[str]) -> None:
        for token in tokens:
            if token in self._started:
                pgid = self._started[token]
                if pgid is not None:
                    _signal_group(pgid, signal.SIGKILL)
            elif token not in self._running:
                self._stopped.add(token)

    async def stop(self, token: str) -> tuple[str, int | None] | None:
        job = self._running.get(token)
        if job is None:
            self._stopped.add(token)  # its task may not have reached us yet
            return None
        started = (self.where, self._started[token]) if token in self._started else None
        job.cancel()
        await asyncio.wait([job])
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
