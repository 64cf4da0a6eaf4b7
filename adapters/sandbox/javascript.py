"""``Sandbox`` on V8 through mini-racer.

Each check and each call gets a fresh isolate (about 5 ms): nothing one
script leaves behind (globals, prototypes patched, a half-finished run after a
timeout) can reach the next. V8 alone has no I/O (no require, fetch, fs); the
one host hook mini-racer installs is ``setTimeout``, whose callbacks cannot run
after our synchronous call returns. Data crosses the boundary as JSON text, so
only JSON values go in and come out. The time limit covers loading the source
and running the function together.

mini-racer drives V8 through an asyncio loop. The sandbox keeps one loop of
its own on a daemon thread (started on first use, stopped by ``close``)
rather than letting mini-racer pick one: it would pick the caller's running
loop if there is one (and then refuse a timeout), or start and stop a thread
per call, whose loop is already closed when V8 reports the end of a run it
terminated after a timeout.
"""

from __future__ import annotations

import asyncio
import re
import threading
import time
from typing import Any

import orjson
from py_mini_racer import JSEvalException, JSOOMException, JSTimeoutException, JSUndefined, MiniRacer, mini_racer

from commands.ports import SandboxError

_IDENTIFIER = re.compile(r"^[A-Za-z_$][A-Za-z0-9_$]*$")
_LOCATION = re.compile(r"^<anonymous>:(\d+): ")


def _reason(exc: JSEvalException) -> str:
    """The first line of V8's report, as "line N: SyntaxError: ..."."""
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    match = _LOCATION.match(first)
    return f"line {match.group(1)}: {first[match.end():]}" if match else first


class JavaScriptSandbox:
    """Implements ``commands.ports.Sandbox``."""

    def __init__(self, timeout_ms: int = 1000, max_memory: int = 64 * 1024 * 1024) -> None:
        self._timeout = timeout_ms / 1000
        self._max_memory = max_memory
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lock = threading.Lock()

    def _event_loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None:
                loop = asyncio.new_event_loop()
                threading.Thread(target=loop.run_forever, name="js-sandbox", daemon=True).start()
                self._loop = loop
            return self._loop

    def close(self) -> None:
        with self._lock:
            loop, self._loop = self._loop, None
        if loop is not None:
            loop.call_soon_threadsafe(loop.stop)

    def _load(self, racer: MiniRacer, source: str, deadline: float) -> None:
        racer.eval(source, timeout_sec=self._left(deadline), max_memory=self._max_memory)

    def _left(self, deadline: float) -> float:
        left = deadline - time.monotonic()
        if left <= 0:
            raise JSTimeoutException()
        return left

    def _limits_error(self, exc: JSEvalException) -> SandboxError:
        if isinstance(exc, JSTimeoutException):
            return SandboxError(f"ran longer than {int(self._timeout * 1000)} ms")
        if isinstance(exc, JSOOMException):
            return SandboxError(f"used more than {self._max_memory // (1024 * 1024)} MB of memory")
        return SandboxError(_reason(exc))

    def compile_check(self, source: str, function: str) -> str | None:
        if not _IDENTIFIER.match(function):
            return f"{function!r} is not a JavaScript function name"
        deadline = time.monotonic() + self._timeout
        with mini_racer(self._event_loop()) as racer:
            try:
                self._load(racer, source, deadline)
                kind = racer.eval(f"typeof {function}", timeout_sec=self._left(deadline))
            except JSEvalException as exc:
                return str(self._limits_error(exc))
        if kind != "function":
            return f"the source does not define function {function}(data)"
        return None

    def call(self, source: str, function: str, argument: Any) -> Any:
        if not _IDENTIFIER.match(function):
            raise SandboxError(f"{function!r} is not a JavaScript function name")
        try:
            literal = orjson.dumps(orjson.dumps(argument).decode()).decode()
        except TypeError as exc:
            raise SandboxError(f"the argument is not JSON: {exc}") from None
        script = (
            f"(function () {{ var out = {function}(JSON.parse({literal}));"
            " return out === undefined ? undefined : JSON.stringify(out); })()"
        )
        deadline = time.monotonic() + self._timeout
        with mini_racer(self._event_loop()) as racer:
            try:
                self._load(racer, source, deadline)
                result = racer.eval(script, timeout_sec=self._left(deadline), max_memory=self._max_memory)
            except JSEvalException as exc:
                raise self._limits_error(exc) from None
        if result is JSUndefined or not isinstance(result, str):
            raise SandboxError(f"{function} returned nothing that JSON can hold")
        return orjson.loads(result)
