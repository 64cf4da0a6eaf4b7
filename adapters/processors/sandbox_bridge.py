"""The synchronous ``JavaScriptSandbox`` behind the async sandbox interface.

Interim, until the concurrency-safe sandbox (a pool of worker processes whose
script stops when the awaiting task is cancelled) replaces it: each call runs
on a thread of its own (the event loop never waits on V8) in a sandbox of its
own (one per worker thread and limits, so nothing is shared between
concurrent calls), with the call's limits. A cancelled call returns at once
to its caller, but V8 itself stops only at the call's time limit.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from adapters.sandbox.javascript import JavaScriptSandbox

DEFAULT_TIMEOUT_MS = 1000
DEFAULT_MEMORY_MB = 64


class ThreadedSandbox:
    def __init__(self) -> None:
        self._local = threading.local()
        self._all: list[JavaScriptSandbox] = []
        self._lock = threading.Lock()

    def _run(self, timeout_ms: int, max_memory_mb: int, method: str, *args: Any) -> Any:
        mine: dict[tuple[int, int], JavaScriptSandbox] = self._local.__dict__.setdefault("sandboxes", {})
        sandbox = mine.get((timeout_ms, max_memory_mb))
        if sandbox is None:
            sandbox = mine[(timeout_ms, max_memory_mb)] = JavaScriptSandbox(timeout_ms, max_memory_mb * 1024 * 1024)
            with self._lock:
                self._all.append(sandbox)
        return getattr(sandbox, method)(*args)

    async def call(
        self, source: str, function: str, argument: Any, *, timeout_ms: int | None = None,
        max_memory_mb: int | None = None,
    ) -> Any:
        return await asyncio.to_thread(
            self._run, timeout_ms or DEFAULT_TIMEOUT_MS, max_memory_mb or DEFAULT_MEMORY_MB, "call", source, function,
            argument,
        )  # fmt: skip

    async def compile_check(self, source: str, function: str) -> str | None:
        return await asyncio.to_thread(self._run, DEFAULT_TIMEOUT_MS, DEFAULT_MEMORY_MB, "compile_check", source, function)

    def close(self) -> None:
        with self._lock:
            sandboxes, self._all = self._all, []
        for sandbox in sandboxes:
            sandbox.close()
