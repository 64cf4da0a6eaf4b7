"""``SchemaValidator`` for the server: jsonschema-rs in worker processes, each call on a time budget.

Why processes: jsonschema-rs holds the GIL for a whole validation (measured: a
thread validating for 4 s let the loop's thread run once), so neither the loop
nor a thread pool can bound it, and nothing can interrupt it but killing its
process. Patterns are linear-time (see ``json_schema.py``), but schemas stay
user code: an ``allOf``/``$ref`` fan-out of depth 20 took 34 s on a one-byte
document, an ``enum`` of 60,000 values over 60,000 items more than 2 minutes,
and 200,000 errors 2.5 s. So every check and validation runs in a worker:

* The loop only encodes the schema and the document (orjson, about 1 ms per
  MiB) and decodes the answer (at most ``MAX_LISTED_ERRORS`` errors).
* Calls are pipelined: up to ``DEPTH`` wait in a worker's pipe, so a worker
  goes from one call to the next without waiting for a busy loop to read its
  answer (with one call per worker, 50 concurrent blob creations ran at a
  third of their speed, each worker idle while its answer sat in the loop).
* The call at the head of a worker's queue has ``budget_ms`` of wall-clock
  time, compile included; past it the worker is killed and that call fails
  with ``ValidationFailed`` (422) saying so. The calls queued behind it had
  not started: they move to another worker (at most ``ATTEMPTS`` times).
  A replacement worker starts on demand (about 50 ms).
* Each worker caps its address space at ``memory_mib``; a worker that dies
  (out of memory, a crash in the library) fails its head call with 422 too.
* When every worker's queue is full, callers wait up to ``wait_seconds``,
  then answer 503 (busy, retry).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from collections import deque
from pathlib import Path
from typing import Any

import orjson
import structlog

from adapters.validation.worker import frame
from adapters.work import worker_time
from commands.ports import Unavailable
from domain.errors import FieldError, Listed, ValidationFailed

log = structlog.get_logger("inkstream.validation")

_PROJECT_ROOT = str(Path(__file__).resolve().parents[2])
_START_SECONDS = 30.0
DEPTH = 8
"""Calls queued in one worker's pipe (the one running included)."""
ATTEMPTS = 3
"""How often a call may move to another worker because the one it waited in was killed."""


def _field_errors(pairs: list[list[str]]) -> list[FieldError]:
    """The worker's errors, already sorted and cut to ``MAX_LISTED_ERRORS`` with its note."""
    return Listed(FieldError(path, message) for path, message in pairs)


def _stopped(reason: str) -> ValidationFailed:
    return ValidationFailed(reason, [FieldError("", reason)])


def _encoded(value: Any, what: str) -> bytes:
    """JSON for the worker; a value orjson cannot encode (over 255 levels deep) cannot be validated: 422."""
    try:
        return orjson.dumps(value)
    except orjson.JSONEncodeError as exc:
        reason = "it is nested too deeply" if "Recursion" in str(exc) else str(exc)
        raise _stopped(f"{what} cannot be validated: {reason}") from None


class _OverBudget(Exception):
    pass


class _Died(Exception):
    pass


class _Requeue(Exception):
    """The worker this call waited in was killed before the call started."""


class _Worker:
    """One child process, its pipes and the calls written to it, answered in order."""

    def __init__(self, process: asyncio.subprocess.Process, budget: float, on_change: asyncio.Event) -> None:
        self.process = process
        self.queue: deque[asyncio.Future[dict[str, Any]]] = deque()
        self.dead = False
        self._budget = budget
        self._on_change = on_change
        self._clock: asyncio.TimerHandle | None = None
        self._reader: asyncio.Task[None] | None = None
        self.reaper: asyncio.Task[int] | None = None

    @classmethod
    async def start(cls, memory_mib: int, budget: float, on_change: asyncio.Event) -> _Worker:
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [_PROJECT_ROOT, os.environ.get("PYTHONPATH")]))}
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "adapters.validation.worker", str(memory_mib),
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, env=env,
        )  # fmt: skip
        worker = cls(process, budget, on_change)
        try:
            async with asyncio.timeout(_START_SECONDS):
                ready = await worker._read()
            if not ready.get("ready"):
                raise RuntimeError(f"unexpected first frame {ready!r}")
        except BaseException:
            worker.kill()
            raise
        worker._reader = asyncio.create_task(worker._answers(), name=f"validation-worker-{process.pid}")
        return worker

    async def _read(self) -> dict[str, Any]:
        assert self.process.stdout is not None
        size = int.from_bytes(await self.process.stdout.readexactly(4), "big")
        answer = orjson.loads(await self.process.stdout.readexactly(size))
        assert isinstance(answer, dict)
        return answer

    def submit(self, payload: bytes) -> asyncio.Future[dict[str, Any]]:
        """Queue one call (written at once: the worker takes it as soon as it is free)."""
        assert self.process.stdin is not None and not self.dead
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self.queue.append(future)
        if len(self.queue) == 1:
            self._start_clock()
        self.process.stdin.write(payload)
        return future

    def _start_clock(self) -> None:
        self._clock = asyncio.get_running_loop().call_later(self._budget, self._die, _OverBudget())

    async def _answers(self) -> None:
        try:
            while True:
                answer = await self._read()
                if self._clock is not None:
                    self._clock.cancel()
                future = self.queue.popleft()
                if self.queue:
                    self._start_clock()  # the worker began the next call as it wrote this answer
                if not future.done():
                    future.set_result(answer)
                self._on_change.set()
                if answer.get("retire"):
                    self._die(_Requeue())
                    return
        except (asyncio.IncompleteReadError, ConnectionError, OSError, orjson.JSONDecodeError):
            self._die(_Died())

    def _die(self, head: Exception) -> None:
        """Kill the process; the running call fails with ``head``, the queued ones move elsewhere."""
        if self.dead:
            return
        self.dead = True
        self.kill()
        if self._clock is not None:
            self._clock.cancel()
        try:
            current = asyncio.current_task()
        except RuntimeError:  # closed from outside the loop
            current = None
        if self._reader is not None and self._reader is not current:
            self._reader.cancel()
        for n, future in enumerate(self.queue):
            if not future.done():
                future.set_exception(head if n == 0 else _Requeue())
        self.queue.clear()
        self._on_change.set()

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            self.process.kill()
        try:  # collect its exit while the loop runs, or its transport outlives the loop
            self.reaper = asyncio.get_running_loop().create_task(self.process.wait())
        except RuntimeError:
            pass

    def close(self) -> None:
        self._die(_Requeue())


class ValidatorPool:
    """Implements ``commands.ports.SchemaValidator``; all workers start on first use."""

    def __init__(
        self, workers: int = 2, budget_ms: int = 1000, memory_mib: int = 512, wait_seconds: float = 10.0
    ) -> None:
        if workers < 1:
            raise ValueError("at least one validation worker is needed")
        self.budget_ms = budget_ms
        self._size = workers
        self._memory_mib = memory_mib
        self._wait_seconds = wait_seconds
        self._workers: list[_Worker] = []
        self._starting = 0
        self._changed = asyncio.Event()
        self._closed = False
        self._spawning: set[asyncio.Task[_Worker]] = set()
        self._killed: list[_Worker] = []
        self.restarts = 0

    async def check_schema(self, schema: dict[str, Any]) -> list[FieldError]:
        header = orjson.dumps({"op": "check"})
        return await self._run([header, _encoded(schema, "the schema"), b""], "of the schema")

    async def validate(self, schema_key: str, schema: dict[str, Any], data: Any) -> list[FieldError]:
        header = orjson.dumps({"op": "validate", "key": schema_key})
        parts = [header, _encoded(schema, f"schema {schema_key}"), _encoded(data, "the data")]
        return await self._run(parts, f"against schema {schema_key}")

    async def _run(self, parts: list[bytes], what: str) -> list[FieldError]:
        payload = b"".join(frame(p) for p in parts)
        for _ in range(ATTEMPTS):
            worker = await self._pick()
            try:
                answer = await worker.submit(payload)
            except _Requeue:
                continue
            except _OverBudget:
                worker_time(self.budget_ms)
                self.restarts += 1
                log.warning("validation.over_budget", what=what, budget_ms=self.budget_ms)
                raise _stopped(
                    f"validation {what} took longer than its budget of {self.budget_ms} ms and was stopped"
                ) from None
            except _Died:
                self.restarts += 1
                log.warning("validation.worker_died", what=what, returncode=worker.process.returncode)
                raise _stopped(
                    f"validation {what} stopped: it needed more than {self._memory_mib} MiB of memory "
                    "or could not be evaluated"
                ) from None
            worker_time(float(answer.get("ms", 0.0)))
            if "failed" in answer:
                raise ValidationFailed(answer["failed"], _field_errors(answer["errors"]))
            return _field_errors(answer["errors"])
        raise Unavailable("every validation worker is busy; retry shortly")

    async def _pick(self) -> _Worker:
        """The live worker with the shortest queue; new ones while there are fewer than ``workers``.

        Only waiting for room in a full queue counts against ``wait_seconds``;
        waiting for a worker that is starting does not (that is bounded apart).
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._wait_seconds
        while True:
            if self._closed:
                raise Unavailable("validation is shutting down")
            self._workers = [w for w in self._workers if not w.dead]
            idle = [w for w in self._workers if not w.queue]
            if idle:
                return idle[0]
            missing = self._size - len(self._workers) - self._starting
            if missing > 0:
                self._starting += missing  # counted now: concurrent callers must not start more
                for _ in range(missing - 1):  # start them all now, not one per busy moment
                    self._spawning.add(spawned := asyncio.create_task(self._start()))
                    spawned.add_done_callback(self._spawned)
                return await self._start()
            open_ = [w for w in self._workers if len(w.queue) < DEPTH]
            if open_:
                return min(open_, key=lambda w: len(w.queue))
            self._changed.clear()
            if self._starting:
                await self._changed.wait()  # a start ends (ready or failed) within _START_SECONDS
                continue
            try:
                async with asyncio.timeout(deadline - loop.time()):
                    await self._changed.wait()
            except TimeoutError:
                raise Unavailable("every validation worker is busy; retry shortly") from None

    async def _start(self) -> _Worker:
        """One more worker; the caller has counted it in ``_starting``."""
        try:
            worker = await _Worker.start(self._memory_mib, self.budget_ms / 1000, self._changed)
        except (OSError, RuntimeError, TimeoutError, asyncio.IncompleteReadError) as exc:
            log.error("validation.worker_start_failed", error=str(exc) or type(exc).__name__)
            raise Unavailable("the validation workers cannot start") from None
        finally:
            self._starting -= 1
            self._changed.set()
        if self._closed:
            worker.close()
            raise Unavailable("validation is shutting down")
        self._workers.append(worker)
        self._changed.set()
        return worker

    def _spawned(self, task: asyncio.Task[_Worker]) -> None:
        self._spawning.discard(task)
        if not task.cancelled():
            task.exception()  # logged by _start; nobody waits for a background start

    def close(self) -> None:
        """Kill every worker; calls in flight and later calls answer 503."""
        self._closed = True
        for task in self._spawning:
            task.cancel()
        for worker in self._workers:
            worker.close()
        self._killed.extend(self._workers)
        self._workers.clear()
        self._changed.set()

    async def aclose(self) -> None:
        """``close``, then wait (5 s at most) until the workers have exited, so none outlives the loop."""
        self.close()
        reapers = [w.reaper for w in self._killed if w.reaper is not None]
        self._killed.clear()
        if reapers:
            await asyncio.wait(reapers, timeout=5)
