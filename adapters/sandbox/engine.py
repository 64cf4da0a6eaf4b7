"""User JavaScript on V8 (mini-racer): the part that runs inside a sandbox worker.

Each request gets a fresh isolate: nothing one script leaves behind (globals,
patched prototypes, a run cut short by a limit) reaches the next request. A
batch shares its isolate between documents, and starts a fresh one after a
document hits a limit, because V8 was stopped half-way through.

Before any user code runs, the isolate loses every capability a JSON-in,
JSON-out function has no use for and that reaches memory or time outside
what the limits watch: ``WebAssembly`` (memories of up to 4 GB outside the
heap), ``SharedArrayBuffer`` and ``Atomics``, and the ``setTimeout`` that
mini-racer installs. V8's heap limit (``max_memory``) still does not count
``ArrayBuffer`` backing stores, nor memory that ICU allocates for ``Intl``:
the worker process's OS limit (``RLIMIT_DATA``, see ``worker.py``) caps those.

The source is treated as the body of a function (``new Function(source)``),
at check time and at run time alike, so what was checked is what runs and no
brace in the source can close a wrapper of ours. A check only compiles: a
second compile with ``return typeof migrate;`` in front of the source tells
whether the source declares the function (declarations are hoisted) without
running any of its top-level statements.

Data crosses the boundary as JSON text. Timeouts use ``eval_cancelable``,
which terminates V8 when the awaiting task is cancelled.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import orjson
from py_mini_racer import JSEvalException, JSOOMException, JSTimeoutException, MiniRacer, mini_racer

from domain.limits import MAX_EVENT_BYTES

IDENTIFIER = re.compile(r"^[A-Za-z_$][A-Za-z0-9_$]*$")
MAX_MESSAGE = 500

# ``var`` globals (mini-racer's timer) cannot be deleted, only emptied; the rest can.
_HARDEN = """
delete globalThis.WebAssembly; delete globalThis.SharedArrayBuffer; delete globalThis.Atomics;
setTimeout = undefined; clearTimeout = undefined; __timer_manager = undefined;
"""
# A dynamic function's source is "(function anonymous(\n) {\n" + body + "\n})": body line 1 is line 3.
_BODY_OFFSET = 2
_LOCATION = re.compile(r"^(undefined|<anonymous>):(\d+): ")


MAX_OUTPUT = MAX_EVENT_BYTES
"""JSON text one call may return: whatever it feeds (a blob, a migrated document) is stored in one event, so a
larger answer can never be kept, and refusing it here means it never crosses the pipe to the API process."""


@dataclass(frozen=True, slots=True)
class Limits:
    timeout_ms: int
    max_memory: int  # bytes of V8 heap
    max_output: int = MAX_OUTPUT  # bytes (UTF-8) of the JSON text a call returns

    def timeout_message(self) -> str:
        return f"ran longer than {self.timeout_ms} ms"

    def memory_message(self) -> str:
        return f"used more than {self.max_memory // (1024 * 1024)} MB of memory"


def literal(text: str) -> str:
    """``text`` as a JavaScript string literal."""
    return orjson.dumps(text).decode()


def describe(exc: JSEvalException, limits: Limits) -> str:
    """What the author sees: the first line of V8's report, as "line N: TypeError: ...",
    with lines counted in their source (the wrapper's own lines are not shown)."""
    if isinstance(exc, JSTimeoutException):
        return limits.timeout_message()
    if isinstance(exc, JSOOMException):
        return limits.memory_message()
    text = str(exc).strip()
    first = text.splitlines()[0] if text else type(exc).__name__
    match = _LOCATION.match(first)
    if match is not None:
        rest = first[match.end():]
        first = f"line {max(1, int(match.group(2)) - _BODY_OFFSET)}: {rest}" if match.group(1) == "undefined" else rest
    return first[:MAX_MESSAGE]


@contextmanager
def _isolate(limits: Limits) -> Iterator[MiniRacer]:
    with mini_racer(asyncio.get_running_loop()) as racer:
        racer.set_hard_memory_limit(limits.max_memory)
        yield racer


async def _eval(racer: MiniRacer, code: str, deadline: float) -> Any:
    left = deadline - asyncio.get_running_loop().time()
    if left <= 0:
        raise JSTimeoutException()
    try:
        async with asyncio.timeout(left):
            return await racer.eval_cancelable(code)
    except TimeoutError:
        raise JSTimeoutException() from None


def _deadline(limits: Limits) -> float:
    return asyncio.get_running_loop().time() + limits.timeout_ms / 1000


async def check(source: str, function: str, limits: Limits) -> str | None:
    """None when ``source`` compiles and declares ``function``, else why not. Runs none of it."""
    if not IDENTIFIER.match(function):
        return f"{function!r} is not a JavaScript function name"
    probe = f"try {{ return typeof {function}; }} catch (e) {{ return 'uninitialized'; }}\n"
    with _isolate(limits) as racer:
        deadline = _deadline(limits)
        try:
            await _eval(racer, _HARDEN, deadline)
            await _eval(racer, f"new Function({literal(source)}); undefined", deadline)
            kind = await _eval(racer, f"new Function({literal(probe + source)})()", deadline)
        except JSEvalException as exc:
            return describe(exc, limits)
    if kind != "function":
        return f"the source does not define function {function}(data) at its top level"
    return None


def _loader(source: str, function: str, max_output: int) -> str:
    """Runs the source's top level once and keeps a caller of its function,
    holding JSON.parse/stringify from before the user's code could replace them.
    An answer longer than ``max_output`` comes back as its length (a number), not as text."""
    body = f"{source}\n;return typeof {function} === 'function' ? {function} : undefined;"
    return f"""(function (parse, stringify) {{
  var fn = new Function({literal(body)})();
  if (typeof fn !== "function") return false;
  globalThis.__ink_call = function (text) {{
    var out = fn(parse(text));
    if (out === undefined) return undefined;
    if (out !== null && typeof out === "object" && typeof out.then === "function") return false;
    var json = stringify(out);
    return typeof json === "string" && json.length > {int(max_output)} ? json.length : json;
  }};
  return true;
}})(JSON.parse, JSON.stringify)"""


def _utf8_bytes(text: str) -> int:
    return len(text.encode("utf-8", "surrogatepass"))


async def run(source: str, function: str, arguments: list[str], limits: Limits) -> list[dict[str, str]]:
    """Call ``function`` once per argument (JSON text); per argument ``{"ok": json_text}``
    or ``{"error": message}``. Each document has ``limits.timeout_ms``; the first one
    (and the first after a document hit a limit) includes running the source's top level."""
    if not IDENTIFIER.match(function):
        return [{"error": f"{function!r} is not a JavaScript function name"}] * len(arguments)
    outcomes: list[dict[str, str]] = []
    while len(outcomes) < len(arguments):
        with _isolate(limits) as racer:
            deadline = _deadline(limits)
            try:
                await _eval(racer, _HARDEN, deadline)
                defined = await _eval(racer, _loader(source, function, limits.max_output), deadline)
            except JSEvalException as exc:
                # the top level failed: it would fail the same way for every remaining document
                return outcomes + [{"error": describe(exc, limits)}] * (len(arguments) - len(outcomes))
            if defined is not True:
                missing = f"the source does not define function {function}(data)"
                return outcomes + [{"error": missing}] * (len(arguments) - len(outcomes))
            while len(outcomes) < len(arguments):
                text = arguments[len(outcomes)]
                try:
                    result = await _eval(racer, f"__ink_call({literal(text)})", deadline)
                except JSEvalException as exc:
                    outcomes.append({"error": describe(exc, limits)})
                    if isinstance(exc, (JSTimeoutException, JSOOMException)):
                        break  # V8 was stopped mid-run: the next document gets a fresh isolate
                else:
                    if isinstance(result, str) and _utf8_bytes(result) > limits.max_output:
                        # JavaScript measured UTF-16 units; a character may take up to 3 bytes: measured
                        # again before the answer crosses the pipe
                        outcomes.append({"error": f"{function} returned {_utf8_bytes(result):,} bytes of JSON; "
                                                  f"a document holds at most {limits.max_output:,} bytes"})
                    elif isinstance(result, str):
                        outcomes.append({"ok": result})
                    elif result is False:
                        outcomes.append({"error": f"{function} returned a Promise (an async function?): it must "
                                                  "return the document itself"})
                    elif isinstance(result, (int, float)) and not isinstance(result, bool):
                        outcomes.append({"error": f"{function} returned {int(result):,} characters of JSON; "
                                                  f"a document holds at most {limits.max_output:,} bytes"})
                    else:
                        outcomes.append({"error": f"{function} returned nothing that JSON can hold"})
                deadline = _deadline(limits)
    return outcomes
