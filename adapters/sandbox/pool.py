"""``Sandbox`` as a small pool of worker processes (``worker.py``).

Why processes: V8 reached from several threads of the API process crashed it
(issue #9), and a fatal error in V8 (out of memory outside the heap, a bug)
ends the whole process it runs in. In a worker it ends that worker only; the
pool reports the call as failed and starts a replacement. Measured against
the other safe design, every V8 call serialised through one owner thread in
the API process, the pool also kept more throughput on two cores (1.1 to 2.1
times; ``bench/sandbox.py``, docs/benchmarks.md).

Each worker serves one request at a time; callers wait (FIFO) for an idle
worker for up to ``queue_seconds``, then get ``Unavailable`` (503). A request
the caller stops waiting for (its task was cancelled) kills its worker, which
stops the JavaScript at once; so does a worker that overruns its time limit
by more than a grace period (V8 normally stops a script itself). A worker
that grew too large asks to be replaced after answering.

Workers are started from the event loop's thread (``PR_SET_PDEATHSIG``
follows the thread that forked), in a session of their own, so a Ctrl-C aimed
at the API does not skip the pool's own stop, which kills them all.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import structlog

from adapters.sandbox import frames
from adapters.work import worker_time
from commands.ports import SandboxError
from commands.ports import Unavailable

log = structlog.get_logger("inkstream.sandbox")

MB = 1024 * 1024
GRACE_SECONDS = 1.0  # beyond the worker's own limits, before the pool kills it
ISOLATE_SECONDS = 0.1  # allowance per document for a fresh isolate (after a document hit a limit)
START_SECONDS = 30.0
STDERR_TAIL = 4096
RETRIES = 3  # workers tried for a request that none accepted (each died first)


def worker_environment() -> dict[str, str]:
    """What a worker needs to start, and nothing else: the API's environment holds
    secrets (JWT secret, database URLs) that code running beside V8 has no use for."""
    root = str(Path(__file__).resolve().parents[2])  # the directory that holds the adapters package
    env = {name: os.environ[name] for name in ("PATH", "LANG", "LC_ALL", "TZ") if name in os.environ}
    env["PYTHONPATH"] = os.pathsep.join([root, *filter(None, [os.environ.get("PYTHONPATH")])])
    return env


class _WorkerLost(Exception):
    """The worker died or was killed before it answered."""


@dataclass(eq=False)
class _Worker:
    process: asyncio.subprocess.Process
    stderr: collections.deque[bytes] = field(default_factory=lambda: collections.deque(maxlen=64))
    drain: asyncio.Task[None] | None = None

    @property
    def pid(self) -> int:
        return self.process.pid

    def tail(self) -> str:
        return b"".join(self.stderr)[-STDERR_TAIL:].decode("utf-8", "replace").strip()


class SandboxPool:
    """Implements ``commands.ports.Sandbox``. ``start`` before use (or let the first
    call start the workers), ``close`` at shutdown."""

    def __init__(
        self,
        workers: int = 2,
        timeout_ms: int = 1000,
        max_memory_mb: int = 64,
        queue_seconds: float = 30.0,
    ) -> None:
        if workers < 1:
            raise ValueError("a sandbox pool needs at least one worker")
        self.size = workers
        self.timeout_ms = timeout_ms
        self.max_memory_mb = max_memory_mb
        self.queue_seconds = queue_seconds
        self._idle: collections.deque[_Worker] = collections.deque()
        self._waiters: collections.deque[asyncio.Future[_Worker | None]] = collections.deque()  # FIFO: fair
        self._workers: set[_Worker] = set()
        self._starting = 0
        self._tasks: set[asyncio.Task[Any]] = set()  # watchers and replacements: cancelled at close
        self._reaping: set[asyncio.Task[Any]] = set()  # awaited at close
        self._closed = False
        self.restarts = 0  # workers replaced after dying, being killed or growing too large

    # --- lifecycle ------------------------------------------------------------------------------

    async def start(self) -> None:
        """Start every worker and wait until each has V8 up; raises if one cannot start."""
        needed = self.size - len(self._workers) - self._starting
        self._starting += needed
        try:
            started = await asyncio.gather(*(self._spawn() for _ in range(needed)), return_exceptions=True)
        finally:
            self._starting -= needed
        for worker in started:
            if isinstance(worker, _Worker):
                self._admit(worker)
        failures = [w for w in started if isinstance(w, BaseException)]
        if failures:
            raise RuntimeError(f"the JavaScript sandbox could not start: {failures[0]}") from failures[0]

    async def close(self) -> None:
        """Kill every worker and wait for them; calls still waiting for a worker get ``Unavailable``."""
        self._closed = True
        for task in list(self._tasks):
            task.cancel()
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
        workers, self._workers = list(self._workers), set()
        for worker in workers:
            with contextlib.suppress(ProcessLookupError):
                worker.process.kill()
        await asyncio.gather(*(self._reap(w) for w in workers), *self._tasks, *self._reaping, return_exceptions=True)

    @property
    def pids(self) -> list[int]:
        """The live workers' process ids (for operators and tests)."""
        return sorted(w.pid for w in self._workers)

    async def _spawn(self) -> _Worker:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-s", "-m", "adapters.sandbox.worker", str(os.getpid()),
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            start_new_session=True, env=worker_environment(), cwd="/",
        )  # fmt: skip
        worker = _Worker(process)
        worker.drain = asyncio.create_task(self._drain(worker), name=f"sandbox-stderr-{process.pid}")
        try:
            assert process.stdout is not None
            async with asyncio.timeout(START_SECONDS):
                ready = await frames.read(process.stdout)
            if "ready" not in ready:
                raise frames.FrameError(f"unexpected first message {ready!r}")
        except BaseException as exc:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await self._reap(worker)
            if isinstance(exc, Exception):
                raise RuntimeError(f"sandbox worker {process.pid} did not start: {worker.tail() or exc!r}") from exc
            raise
        return worker

    def _admit(self, worker: _Worker) -> None:
        self._workers.add(worker)
        self._release(worker)
        self._background(self._watch(worker), self._tasks)

    async def _watch(self, worker: _Worker) -> None:
        """Replace a worker that dies while idle (killed from outside, the OOM killer)."""
        await worker.process.wait()
        self._discard(worker, "died")

    async def _drain(self, worker: _Worker) -> None:
        stream = worker.process.stderr
        assert stream is not None
        while chunk := await stream.read(STDERR_TAIL):
            worker.stderr.append(chunk)

    async def _reap(self, worker: _Worker) -> int | None:
        code = None
        with contextlib.suppress(Exception):
            async with asyncio.timeout(10):
                code = await worker.process.wait()
        if worker.drain is not None:
            # asyncio.wait, not ``await worker.drain`` under suppress(BaseException): that also
            # swallowed the cancellation of whoever reaps (a shutdown), not only the drain's own end
            await asyncio.wait({worker.drain}, timeout=1)
            worker.drain.cancel()
            if worker.drain.done() and not worker.drain.cancelled():
                worker.drain.exception()  # retrieved, as the await did: no "never retrieved" warning
        return code

    def _discard(self, worker: _Worker, why: str) -> None:
        """Kill ``worker`` (if it still runs), reap it in the background, start a replacement.
        Once per worker: its watcher and its caller may both see it die."""
        if worker not in self._workers:
            return
        self._workers.discard(worker)
        with contextlib.suppress(ProcessLookupError):
            worker.process.kill()
        self.restarts += 1
        self._background(self._forget(worker, why), self._reaping)
        self._refill()

    async def _forget(self, worker: _Worker, why: str) -> None:
        code = await self._reap(worker)
        fields: dict[str, Any] = {"pid": worker.pid, "why": why, "exit_code": code}
        if why == "died":
            log.warning("sandbox.worker_died", stderr=worker.tail()[-1000:], **fields)
        else:
            log.info("sandbox.worker_replaced", **fields)

    def _refill(self) -> None:
        if self._closed:
            return
        while len(self._workers) + self._starting < self.size:
            self._starting += 1
            self._background(self._replace(), self._tasks)

    async def _replace(self) -> None:
        delay = 0.5
        try:
            while not self._closed:
                try:
                    worker = await self._spawn()
                except Exception as exc:  # noqa: BLE001 - logged, retried with backoff
                    log.error("sandbox.worker_start_failed", error=str(exc)[-2000:], retry_in=delay)
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 30.0)
                    continue
                if self._closed:
                    worker.process.kill()
                    await self._reap(worker)
                    return
                self._admit(worker)
                return
        finally:
            self._starting -= 1

    @staticmethod
    def _background(coro: Any, tasks: set[asyncio.Task[Any]]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    # --- one round trip -----------------------------------------------------------------------

    def _release(self, worker: _Worker) -> None:
        """Hand a free worker straight to the caller that has waited longest, else keep it idle.
        (Putting it back in a queue would let the caller that just finished take it again first.)"""
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(worker)
                return
        self._idle.append(worker)

    def _take_idle(self) -> _Worker | None:
        while self._idle:
            worker = self._idle.popleft()
            if worker in self._workers:  # else it was discarded while idle
                return worker
        return None

    async def _acquire(self) -> _Worker:
        if self._closed:
            raise Unavailable("the JavaScript sandbox is shut down")
        self._refill()
        deadline = asyncio.get_running_loop().time() + self.queue_seconds
        while True:
            worker = None if self._waiters else self._take_idle()
            if worker is None:
                waiter: asyncio.Future[_Worker | None] = asyncio.get_running_loop().create_future()
                self._waiters.append(waiter)
                try:
                    async with asyncio.timeout_at(deadline):
                        worker = await waiter
                except BaseException as exc:
                    if waiter.done() and not waiter.cancelled() and (handed := waiter.result()) is not None:
                        self._release(handed)  # handed over just as this caller gave up: pass it on
                    waiter.cancel()
                    if isinstance(exc, TimeoutError):
                        raise Unavailable(
                            f"the JavaScript sandbox is busy: no worker became free within {self.queue_seconds:g} s"
                        ) from None
                    raise
                if worker is None:
                    raise Unavailable("the JavaScript sandbox is shut down")
            if worker not in self._workers:
                continue
            if worker.process.returncode is not None:  # died, and its watcher has not run yet
                self._discard(worker, "died")
                continue
            return worker

    async def _exchange(self, request: dict[str, Any], seconds: float) -> dict[str, Any]:
        """One request on one worker. A worker that dies before it accepted the request
        (killed while idle, and its watcher has not noticed yet) ran none of it: the
        request goes to another worker. After it accepted, its death is the request's."""
        for attempt in range(1, RETRIES + 1):
            worker = await self._acquire()
            accepted = False
            sent_at = asyncio.get_running_loop().time()
            try:
                assert worker.process.stdin is not None and worker.process.stdout is not None
                async with asyncio.timeout(seconds):
                    worker.process.stdin.write(frames.encode(request))
                    await worker.process.stdin.drain()
                    accepted = "accepted" in await frames.read(worker.process.stdout)
                    reply = await frames.read(worker.process.stdout)
            except TimeoutError:
                self._discard(worker, "overran")
                worker_time(seconds * 1000)  # it ran (or hung) the whole time it was given
                raise _WorkerLost("overran") from None
            except (asyncio.IncompleteReadError, ConnectionError, frames.FrameError):
                self._discard(worker, "died")
                if not accepted and attempt < RETRIES:
                    continue
                raise _WorkerLost("died") from None
            except BaseException:  # cancelled: the JavaScript must stop now
                self._discard(worker, "cancelled")
                if accepted:  # it ran until now
                    worker_time((asyncio.get_running_loop().time() - sent_at) * 1000)
                raise
            worker_time(float(reply.pop("ms", 0.0)))
            if reply.pop("recycle", False):
                self._discard(worker, "grew")
            else:
                self._release(worker)
            return reply
        raise AssertionError("unreachable")

    # --- the port -----------------------------------------------------------------------------

    def _limits(self, timeout_ms: int | None, max_memory_mb: int | None) -> tuple[int, int]:
        return (timeout_ms or self.timeout_ms, (max_memory_mb or self.max_memory_mb) * MB)

    def _lost(self, why: str, timeout_ms: int, max_memory: int) -> SandboxError:
        if why == "overran":
            return SandboxError(f"ran longer than {timeout_ms} ms")
        return SandboxError(f"the sandbox stopped while running it (it may have used more than {max_memory // MB} MB of memory)")

    async def compile_check(self, source: str, function: str) -> str | None:
        timeout_ms, max_memory = self._limits(None, None)
        request = {"op": "check", "source": source, "function": function,
                   "timeout_ms": timeout_ms, "max_memory": max_memory}  # fmt: skip
        try:
            reply = await self._exchange(request, timeout_ms / 1000 + GRACE_SECONDS)
        except _WorkerLost as lost:
            return str(self._lost(str(lost), timeout_ms, max_memory))
        problem = reply.get("problem")
        return None if problem is None else str(problem)

    async def call(
        self,
        source: str,
        function: str,
        argument: Any,
        *,
        timeout_ms: int | None = None,
        max_memory_mb: int | None = None,
    ) -> Any:
        (outcome,) = await self.call_many(
            source, function, [argument], timeout_ms=timeout_ms, max_memory_mb=max_memory_mb
        )
        if isinstance(outcome, SandboxError):
            raise outcome
        return outcome

    async def call_many(
        self,
        source: str,
        function: str,
        arguments: list[Any],
        *,
        timeout_ms: int | None = None,
        max_memory_mb: int | None = None,
    ) -> list[Any | SandboxError]:
        timeout, max_memory = self._limits(timeout_ms, max_memory_mb)
        results: list[Any | SandboxError] = [None] * len(arguments)
        texts: list[str] = []
        positions: list[int] = []
        for i, argument in enumerate(arguments):
            try:
                text = orjson.dumps(argument).decode()
            except TypeError as exc:
                results[i] = SandboxError(f"the argument is not JSON: {exc}")
                continue
            if _LONG_NUMBER.search(text) is not None and inexact_in_javascript(argument):
                results[i] = SandboxError(INEXACT)
                continue
            texts.append(text)
            positions.append(i)
        for i, outcome in zip(positions, await self._run(source, function, texts, timeout, max_memory)):
            results[i] = outcome
        return results

    async def _run(
        self, source: str, function: str, texts: list[str], timeout_ms: int, max_memory: int
    ) -> list[Any | SandboxError]:
        if not texts:
            return []
        request = {"op": "run", "source": source, "function": function, "arguments": texts,
                   "timeout_ms": timeout_ms, "max_memory": max_memory}  # fmt: skip
        # each document has timeout_ms, which covers running the top level again when it must
        seconds = len(texts) * (timeout_ms / 1000 + ISOLATE_SECONDS) + GRACE_SECONDS
        try:
            reply = await self._exchange(request, seconds)
        except _WorkerLost as lost:
            if len(texts) == 1:
                return [self._lost(str(lost), timeout_ms, max_memory)]
            # one document took the worker down: run them one by one to tell which
            return [(await self._run(source, function, [text], timeout_ms, max_memory))[0] for text in texts]
        return [decode_outcome(outcome, function) for outcome in reply["outcomes"]]


MAX_SAFE_INTEGER = 2**53 - 1
INEXACT = (f"the document holds an integer beyond ±{MAX_SAFE_INTEGER:,} (2^53 - 1), which JavaScript cannot hold "
           "exactly: a transform would change it without a word")
_LONG_NUMBER = re.compile(r"\d{16}")
"""In the document's JSON text, a run of digits as long as an integer JavaScript may not hold exactly (a
string of digits matches too, and the document is then looked at value by value)."""


def inexact_in_javascript(value: Any) -> bool:
    """Whether ``value`` holds an integer that JavaScript's numbers would change (iterative: any depth)."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, bool):
            continue
        if isinstance(item, int):
            if abs(item) > MAX_SAFE_INTEGER:
                return True
        elif isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


def decode_outcome(outcome: dict[str, str], function: str) -> Any | SandboxError:
    """A worker's answer for one document: the value, or the error to give its author."""
    if "error" in outcome:
        return SandboxError(outcome["error"])
    try:
        return orjson.loads(outcome["ok"])
    except orjson.JSONDecodeError:
        return SandboxError(f"{function} returned something JSON cannot hold")
