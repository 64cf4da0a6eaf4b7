"""``SchemaValidator`` for the server: jsonschema-rs in worker processes, each call on a time budget.

Why processes: jsonschema-rs holds the GIL for a whole validation (measured: a
thread validating for 4 s let the loop's thread run once), so neither the loop
nor a thread pool can bound it, and nothing can interrupt it but killing its
process. Patterns are linear-time (see ``json_schema.py``), but schemas stay
user code: an ``allOf``/``$ref`` fan-out of depth 20 took 34 s on a one-byte
document, an ``enum`` of 60,000 values over 60,000 items more than 2 minutes,
and 200,000 errors 2.5 s. So every check and validation runs in a worker:

* The loop only encodes the schema and the document (orjson, about 1 ms per
  MiB) and decodes the answer (at most ``MAX_LISTED_ERRORS`` errors). A
  round trip costs 0.04 ms for a small document.
* Each call has ``budget_ms`` of wall-clock time in its worker, compile
  included; past it the worker is killed (a new one starts on demand, in about
  50 ms) and the call fails with ``ValidationFailed`` (422) saying so.
* Each worker caps its address space at ``memory_mib``; a worker that dies
  (out of memory, a crash in the library) fails its call with 422 too.
* ``workers`` calls run at once; more wait up to ``wait_seconds`` for a free
  worker, then answer 503 (busy, retry).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from pathlib import Path
from typing import Any

import orjson
import structlog

from adapters.validation.worker import frame
from domain.errors import FieldError, Unavailable, ValidationFailed

log = structlog.get_logger("inkstream.validation")

_PROJECT_ROOT = str(Path(__file__).resolve().parents[2])
_START_SECONDS = 30.0


def _field_errors(pairs: list[list[str]]) -> list[FieldError]:
    return [FieldError(path, message) for path, message in pairs]


def _stopped(reason: str) -> ValidationFailed:
    return ValidationFailed(reason, [FieldError("", reason)])


def _encoded(value: Any, what: str) -> bytes:
    """JSON for the worker; a value orjson cannot encode (over 255 levels deep) cannot be validated: 422."""
    try:
        return orjson.dumps(value)
    except orjson.JSONEncodeError as exc:
        reason = "it is nested too deeply" if "Recursion" in str(exc) else str(exc)
        raise _stopped(f"{what} cannot be validated: {reason}") from None


class _Worker:
    """One child process and its pipes; used by one call at a time."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process

    @classmethod
    async def start(cls, memory_mib: int) -> _Worker:
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [_PROJECT_ROOT, os.environ.get("PYTHONPATH")]))}
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "adapters.validation.worker", str(memory_mib),
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, env=env,
        )  # fmt: skip
        worker = cls(process)
        try:
            async with asyncio.timeout(_START_SECONDS):
                ready = await worker.read()
            if not ready.get("ready"):
                raise RuntimeError(f"unexpected first frame {ready!r}")
        except BaseException:
            await worker.kill()
            raise
        return worker

    async def read(self) -> dict[str, Any]:
        assert self.process.stdout is not None
        size = int.from_bytes(await self.process.stdout.readexactly(4), "big")
        answer = orjson.loads(await self.process.stdout.readexactly(size))
        assert isinstance(answer, dict)
        return answer

    async def call(self, parts: list[bytes]) -> dict[str, Any]:
        assert self.process.stdin is not None
        self.process.stdin.write(b"".join(frame(p) for p in parts))
        await self.process.stdin.drain()
        return await self.read()

    async def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            self.process.kill()
        with contextlib.suppress(Exception):
            async with asyncio.timeout(5):
                await self.process.wait()

    def kill_now(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            self.process.kill()


class ValidatorPool:
    """Implements ``commands.ports.SchemaValidator``; workers start on first use."""

    def __init__(
        self, workers: int = 2, budget_ms: int = 1000, memory_mib: int = 512, wait_seconds: float = 10.0
    ) -> None:
        if workers < 1:
            raise ValueError("at least one validation worker is needed")
        self.budget_ms = budget_ms
        self._memory_mib = memory_mib
        self._wait_seconds = wait_seconds
        self._slots = asyncio.Semaphore(workers)
        self._idle: list[_Worker] = []
        self._busy: set[_Worker] = set()
        self.restarts = 0

    async def check_schema(self, schema: dict[str, Any]) -> list[FieldError]:
        header = orjson.dumps({"op": "check"})
        return await self._run([header, _encoded(schema, "the schema"), b""], "of the schema")

    async def validate(self, schema_key: str, schema: dict[str, Any], data: Any) -> list[FieldError]:
        header = orjson.dumps({"op": "validate", "key": schema_key})
        parts = [header, _encoded(schema, f"schema {schema_key}"), _encoded(data, "the data")]
        return await self._run(parts, f"against schema {schema_key}")

    async def _run(self, parts: list[bytes], what: str) -> list[FieldError]:
        try:
            async with asyncio.timeout(self._wait_seconds):
                await self._slots.acquire()
        except TimeoutError:
            raise Unavailable("every validation worker is busy; retry shortly") from None
        try:
            worker = await self._worker()
            self._busy.add(worker)
            keep = False
            try:
                async with asyncio.timeout(self.budget_ms / 1000):
                    answer = await worker.call(parts)
                keep = not answer.get("retire")
            except TimeoutError:
                log.warning("validation.over_budget", what=what, budget_ms=self.budget_ms)
                raise _stopped(
                    f"validation {what} took longer than its budget of {self.budget_ms} ms and was stopped"
                ) from None
            except (asyncio.IncompleteReadError, ConnectionError, BrokenPipeError):
                code = worker.process.returncode
                log.warning("validation.worker_died", what=what, returncode=code)
                raise _stopped(
                    f"validation {what} stopped: it needed more than {self._memory_mib} MiB of memory "
                    "or could not be evaluated"
                ) from None
            finally:
                self._busy.discard(worker)
                if keep:
                    self._idle.append(worker)
                else:
                    self.restarts += 1
                    await worker.kill()
        finally:
            self._slots.release()
        if "failed" in answer:
            raise ValidationFailed(answer["failed"], _field_errors(answer["errors"]))
        return _field_errors(answer["errors"])

    async def _worker(self) -> _Worker:
        while self._idle:
            worker = self._idle.pop()
            if worker.process.returncode is None:
                return worker
        try:
            return await _Worker.start(self._memory_mib)
        except (OSError, RuntimeError, TimeoutError, asyncio.IncompleteReadError) as exc:
            log.error("validation.worker_start_failed", error=str(exc) or type(exc).__name__)
            raise Unavailable("the validation workers cannot start") from None

    def close(self) -> None:
        """Kill every worker (idle or busy); a later call starts new ones."""
        for worker in [*self._idle, *self._busy]:
            worker.kill_now()
        self._idle.clear()
