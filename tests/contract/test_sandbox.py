"""The JavaScript sandbox (adapters/sandbox) against real V8 in real worker processes.

The session's ``sandbox`` fixture is a pool of two workers with 500 ms and
32 MB; tests that kill, starve or measure workers start a pool of their own.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

from adapters.sandbox.pool import SandboxPool
from commands.ports import SandboxError
from commands.ports import Unavailable

REPO_ROOT = Path(__file__).resolve().parents[2]

FINE = "function f(d) { return {n: d.n + 1}; }"
RUNAWAY = "function f(d) { while (true) {} }"
HEAP_BOMB = "function f(d) { var a = []; while (true) a.push(new Array(1e5).fill(1)); }"
BUFFER_BOMB = "function f(d) { var k = []; for (var i = 0; i < 3; i++) k.push(new Uint8Array(128e6).fill(1)); return k.length; }"
WASM_GROW = "function f(d) { var m = new WebAssembly.Memory({initial: 1, maximum: 65536}); m.grow(4095); return 1; }"
RESIZE = "function f(d) { var b = new ArrayBuffer(0, {maxByteLength: 2 ** 32}); b.resize(2 ** 31); return b.byteLength; }"
THROWS = "function f(d) { throw new TypeError('bad ' + d.n); }"


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def peak_rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM")


async def until(condition: Any, seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.02)


async def error_of(call: Any) -> str:
    with pytest.raises(SandboxError) as caught:
        await call
    return str(caught.value)


# --- what a call does -----------------------------------------------------------------------------


async def test_json_in_json_out_with_time_and_memory_limits(sandbox: SandboxPool) -> None:
    assert await sandbox.call("function migrate(d) { d.n += 1; return d; }", "migrate", {"n": 1, "s": "é"}) == {
        "n": 2, "s": "é"
    }  # fmt: skip
    assert await sandbox.call("function f(d) { return typeof require + typeof fetch; }", "f", None) == "undefinedundefined"
    assert await error_of(sandbox.call(RUNAWAY, "f", 1)) == "ran longer than 500 ms"
    assert await error_of(sandbox.call(HEAP_BOMB, "f", 1)) == "used more than 32 MB of memory"
    assert await error_of(sandbox.call("function f(d) {}", "f", 1)) == "f returned nothing that JSON can hold"
    assert await error_of(sandbox.call(THROWS, "f", {"n": 1})) == "line 1: TypeError: bad 1"
    assert await error_of(sandbox.call("var x = 1;\n\nfunction f(d) {\n  return d.a.b;\n}", "f", {})) == (
        "line 4: TypeError: Cannot read properties of undefined (reading 'b')"
    )
    assert await error_of(sandbox.call("function g(d) { return d; }", "f", 1)) == (
        "the source does not define function f(data)"
    )
    assert await error_of(sandbox.call(FINE, "f", {1, 2})) == "the argument is not JSON: Type is not JSON serializable: set"


async def test_an_answer_too_large_to_store_is_refused_in_the_worker(sandbox: SandboxPool) -> None:
    # 2 million characters: more than any event holds, so no blob or migrated document could keep it; the
    # worker says so instead of piping the text to the API process (a 300 MB answer would stall its loop).
    huge = "function f(d) { return 'x'.repeat(2000000); }"
    assert await error_of(sandbox.call(huge, "f", 1)) == (
        "f returned 2,000,002 characters of JSON; a document holds at most 983,040 bytes"
    )
    # one under the limit still comes back whole, and numbers are still answers
    fits = "function f(d) { return 'x'.repeat(983038); }"
    assert await sandbox.call(fits, "f", 1) == "x" * 983038
    assert await sandbox.call("function f(d) { return 7; }", "f", 1) == 7
    either = "function f(d) { return d ? d : 'x'.repeat(2000000); }"
    outcomes = await sandbox.call_many(either, "f", [3, 0])
    assert outcomes[0] == 3 and isinstance(outcomes[1], SandboxError)


async def test_an_answer_is_measured_in_bytes_not_characters(sandbox: SandboxPool) -> None:
    """JavaScript counts UTF-16 units: 983,000 CJK characters are under the limit there and 2.9 MB of UTF-8,
    which no event holds (a batch of a hundred such answers made a 295 MB reply)."""
    wide = "function f(d) { return '\u4e2d'.repeat(983000); }"
    assert await error_of(sandbox.call(wide, "f", 1)) == (
        "f returned 2,949,002 bytes of JSON; a document holds at most 983,040 bytes"
    )
    assert await sandbox.call("function f(d) { return '\u4e2d'.repeat(300000); }", "f", 1) == "\u4e2d" * 300000


async def test_integers_javascript_would_change_never_reach_it(sandbox: SandboxPool) -> None:
    """2^53 + 1 came back from an identity transform as 2^53, and 2^64 - 1 as a float: silently changed
    data. A document holding such an integer is refused for that document; strings of digits are fine."""
    identity = "function f(d) { return d; }"
    outcomes = await sandbox.call_many(identity, "f", [
        {"n": 2**53 + 1}, {"deep": [[{"n": -(2**63)}]]}, {"n": 2**64 - 1},
        {"n": 2**53 - 1, "m": -(2**53 - 1)}, {"digits": "18446744073709551615"}, {"f": 1.5e300},
    ])
    assert [str(o) if isinstance(o, SandboxError) else o for o in outcomes] == [
        *[("the document holds an integer beyond ±9,007,199,254,740,991 (2^53 - 1), which JavaScript cannot hold "
           "exactly: a transform would change it without a word")] * 3,
        {"n": 2**53 - 1, "m": -(2**53 - 1)}, {"digits": "18446744073709551615"}, {"f": 1.5e300},
    ]


async def test_a_promise_is_no_answer(sandbox: SandboxPool) -> None:
    """An ``async function`` returns a Promise, which JSON.stringify made ``{}``: the document's data lost."""
    assert await error_of(sandbox.call("async function f(d) { return d; }", "f", {"n": 1})) == (
        "f returned a Promise (an async function?): it must return the document itself"
    )
    assert await sandbox.call("function f(d) { return {then: 1, n: d.n}; }", "f", {"n": 1}) == {"then": 1, "n": 1}


async def test_per_call_limits_override_the_defaults(sandbox: SandboxPool) -> None:
    busy = "function f(d) { var end = Date.now() + 200; while (Date.now() < end) {} return 1; }"
    assert await sandbox.call(busy, "f", 1) == 1
    assert await error_of(sandbox.call(busy, "f", 1, timeout_ms=50)) == "ran longer than 50 ms"
    big = "function f(d) { var a = []; for (var i = 0; i < 200; i++) a.push(new Array(1e5).fill(i)); return a.length; }"
    assert await sandbox.call(big, "f", 1, max_memory_mb=128) == 200
    assert await error_of(sandbox.call(big, "f", 1, max_memory_mb=16)) == "used more than 16 MB of memory"


async def test_capabilities_beyond_json_are_gone(sandbox: SandboxPool) -> None:
    names = ["WebAssembly", "SharedArrayBuffer", "Atomics", "setTimeout", "clearTimeout", "__timer_manager"]
    source = "function f(d) { return d.map(function (n) { return typeof globalThis[n]; }); }"
    assert await sandbox.call(source, "f", names) == ["undefined"] * len(names)


async def test_memory_outside_the_heap_is_capped(sandbox: SandboxPool) -> None:
    """Issue #9, defect 4: ArrayBuffers and WebAssembly memory are not on V8's heap."""
    assert await error_of(sandbox.call(BUFFER_BOMB, "f", 1)) == "line 1: RangeError: Array buffer allocation failed"
    assert await error_of(sandbox.call(WASM_GROW, "f", 1)) == "line 1: ReferenceError: WebAssembly is not defined"
    assert await error_of(sandbox.call(RESIZE, "f", 1)) == (
        "line 1: RangeError: ArrayBuffer.prototype.resize: Out of memory"
    )
    assert await sandbox.call("function f(d) { return new Uint8Array(1e6).fill(7)[999999]; }", "f", 1) == 7


async def test_an_arraybuffer_bomb_does_not_grow_the_worker() -> None:
    """The worker's peak resident memory stays far below the 384 MB the script asks for."""
    pool = SandboxPool(workers=1, timeout_ms=2000, max_memory_mb=32)
    await pool.start()
    try:
        (pid,) = pool.pids
        for source in (BUFFER_BOMB, "var k = [new Uint8Array(3e8).fill(1)];\nfunction f(d) { return 1; }"):
            with pytest.raises(SandboxError):
                await pool.call(source, "f", 1)
        assert pool.pids == [pid]  # the allocations failed inside V8; the worker lives on
        peak = peak_rss_mb(pid)
        print(f"worker peak RSS after the bombs: {peak:.0f} MB")
        assert peak < 250
    finally:
        await pool.close()


# --- checks compile only ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "source",
    [
        "while (true) {}\nfunction migrate(d) { return d; }",
        "var k = [new Uint8Array(3e8).fill(1)];\nfunction migrate(d) { return d; }",
        "var a = []; while (true) a.push(new Array(1e5).fill(1));\nfunction migrate(d) { return d; }",
        "throw new Error('top level');\nfunction migrate(d) { return d; }",
        "var migrate = 5;\nfunction migrate(d) { return d; }",
    ],
    ids=["runaway", "300 MB buffer", "heap bomb", "throw", "reassigned"],
)
async def test_a_compile_check_runs_no_top_level_code(sandbox: SandboxPool, source: str) -> None:
    began = time.monotonic()
    assert await sandbox.compile_check(source, "migrate") is None
    assert time.monotonic() - began < 0.5  # the 500 ms limit would have stopped a run


async def test_a_compile_check_reports_syntax_errors_and_missing_functions(sandbox: SandboxPool) -> None:
    assert await sandbox.compile_check("var a = 1;\n\nvar b = ;", "migrate") == "line 3: SyntaxError: Unexpected token ';'"
    assert await sandbox.compile_check("'use strict';\nwith (a) {}", "migrate") == (
        "line 2: SyntaxError: Strict mode code may not include a with statement"
    )
    # a brace cannot close the function the source is read into
    injected = await sandbox.compile_check("function migrate(d) { return d; }\n}\n(function () {", "migrate")
    assert injected is not None and "SyntaxError" in injected
    missing = "the source does not define function migrate(data) at its top level"
    for source in ("function transform(d) { return d; }", "let migrate = function (d) { return d; };", "{ function migrate(d) {} }"):
        assert await sandbox.compile_check(source, "migrate") == missing
    assert await sandbox.compile_check("function migrate(d) { return d; }", "bad name") == "'bad name' is not a JavaScript function name"


# --- batches --------------------------------------------------------------------------------------


async def test_call_many_reports_each_document_separately(sandbox: SandboxPool) -> None:
    source = """
    var calls = 0;
    function f(d) {
      calls += 1;
      if (d.kind === "throw") throw new Error("no " + d.i);
      if (d.kind === "loop") while (true) {}
      if (d.kind === "bomb") { var a = []; while (true) a.push(new Array(1e5).fill(1)); }
      if (d.kind === "nothing") return undefined;
      return {i: d.i, calls: calls};
    }"""
    kinds = ["ok", "throw", "ok", "loop", "ok", "bomb", "nothing", "ok"]
    results = await sandbox.call_many(source, "f", [{"kind": k, "i": i} for i, k in enumerate(kinds)])
    assert [str(r) if isinstance(r, SandboxError) else r for r in results] == [
        {"i": 0, "calls": 1},
        "line 5: Error: no 1",
        {"i": 2, "calls": 3},
        "ran longer than 500 ms",
        {"i": 4, "calls": 1},  # a fresh isolate after the limit: the top level ran again
        "used more than 32 MB of memory",
        "f returned nothing that JSON can hold",
        {"i": 7, "calls": 2},
    ]
    assert await sandbox.call_many(source, "f", []) == []
    top = await sandbox.call_many("throw new RangeError('top');\nfunction f(d) { return d; }", "f", [1, 2])
    assert [str(r) for r in top] == ["line 1: RangeError: top"] * 2
    mixed = await sandbox.call_many(FINE, "f", [{"n": 1}, {3}, {"n": 5}])
    assert mixed[0] == {"n": 2} and mixed[2] == {"n": 6} and isinstance(mixed[1], SandboxError)


async def test_a_document_that_kills_its_worker_fails_alone() -> None:
    """V8 aborts (the OS memory cap) on one document: the batch is rerun one by one, so only it fails."""
    pool = SandboxPool(workers=1, timeout_ms=2000, max_memory_mb=32)
    await pool.start()
    try:
        source = "function f(d) { if (d === 2) return 'x'.repeat(2 ** 28).replace(/x/g, 'y').length; return d * 10; }"
        results = await pool.call_many(source, "f", [1, 2, 3])
        assert results[0] == 10 and results[2] == 30
        assert str(results[1]) == "the sandbox stopped while running it (it may have used more than 32 MB of memory)"
        assert pool.restarts >= 1
        assert await pool.call(FINE, "f", {"n": 1}) == {"n": 2}
    finally:
        await pool.close()


# --- concurrency, crashes, cancellation ---------------------------------------------------------------


async def test_fifty_concurrent_calls_of_every_kind_each_get_their_answer(sandbox: SandboxPool) -> None:
    """Issue #9, defect 1: concurrent V8 use crashed the API process."""
    expected = {
        FINE: lambda i: {"n": i + 1},
        RUNAWAY: lambda i: "ran longer than 500 ms",
        HEAP_BOMB: lambda i: "used more than 32 MB of memory",
        BUFFER_BOMB: lambda i: "line 1: RangeError: Array buffer allocation failed",
        WASM_GROW: lambda i: "line 1: ReferenceError: WebAssembly is not defined",
        THROWS: lambda i: f"line 1: TypeError: bad {i}",
    }
    sources = list(expected)
    jobs = [(sources[i % len(sources)], i) for i in range(50)]

    async def one(source: str, i: int) -> Any:
        try:
            return await sandbox.call(source, "f", {"n": i})
        except SandboxError as exc:
            return str(exc)

    results = await asyncio.gather(*(one(source, i) for source, i in jobs))
    assert results == [expected[source](i) for source, i in jobs]
    assert await sandbox.compile_check("function f(d) { return d; }", "f") is None


async def test_a_worker_killed_from_outside_is_replaced() -> None:
    pool = SandboxPool(workers=2, timeout_ms=2000, max_memory_mb=32)
    await pool.start()
    try:
        victim = pool.pids[0]
        os.kill(victim, signal.SIGKILL)  # while idle: the next call may be sent to it before the pool notices
        assert await pool.call(FINE, "f", {"n": 1}) == {"n": 2}
        await until(lambda: victim not in pool.pids and len(pool.pids) == 2)
        for pid in pool.pids:
            os.kill(pid, signal.SIGKILL)
        assert await pool.call(FINE, "f", {"n": 1}) == {"n": 2}  # waits for a replacement
        await until(lambda: len(pool.pids) == 2)

        busy = asyncio.create_task(pool.call(RUNAWAY, "f", 1, timeout_ms=30_000))
        await asyncio.sleep(0.3)
        for pid in pool.pids:  # one of them runs the loop; kill both
            os.kill(pid, signal.SIGSEGV)
        message = await error_of(busy)
        assert message == "the sandbox stopped while running it (it may have used more than 32 MB of memory)"
        assert "/" not in message
        assert await pool.call(FINE, "f", {"n": 2}) == {"n": 3}
        await until(lambda: len(pool.pids) == 2)
        assert pool.restarts == 5
    finally:
        await pool.close()


async def test_cancelling_a_call_stops_its_javascript() -> None:
    pool = SandboxPool(workers=1, timeout_ms=60_000, max_memory_mb=32)
    await pool.start()
    try:
        (worker,) = pool.pids
        call = asyncio.create_task(pool.call(RUNAWAY, "f", 1))
        await asyncio.sleep(0.3)
        began = time.monotonic()
        call.cancel()
        with pytest.raises(asyncio.CancelledError):
            await call
        await until(lambda: not alive(worker), 2.0)
        stopped = time.monotonic() - began
        print(f"the JavaScript stopped {stopped * 1000:.0f} ms after the cancel")
        assert await pool.call(FINE, "f", {"n": 1}) == {"n": 2}  # on the replacement
    finally:
        await pool.close()


async def test_no_free_worker_in_time_is_unavailable() -> None:
    pool = SandboxPool(workers=1, timeout_ms=1500, max_memory_mb=32, queue_seconds=0.2)
    await pool.start()
    try:
        busy = asyncio.create_task(pool.call(RUNAWAY, "f", 1))
        await asyncio.sleep(0.1)
        with pytest.raises(Unavailable, match="the JavaScript sandbox is busy"):
            await pool.call(FINE, "f", {"n": 1})
        assert await error_of(busy) == "ran longer than 1500 ms"
    finally:
        await pool.close()


# --- lifecycle --------------------------------------------------------------------------------------


async def test_close_stops_every_worker() -> None:
    pool = SandboxPool(workers=2)
    await pool.start()
    pids = pool.pids
    assert len(pids) == 2 and all(alive(pid) for pid in pids)
    busy = asyncio.create_task(pool.call(RUNAWAY, "f", 1, timeout_ms=30_000))
    await asyncio.sleep(0.2)
    await pool.close()
    assert not any(alive(pid) for pid in pids)
    with pytest.raises((SandboxError, Unavailable)):
        await busy
    with pytest.raises(Unavailable):
        await pool.call(FINE, "f", {"n": 1})


async def test_workers_get_no_secrets_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INKSTREAM_JWT_SECRET", "do-not-leak")
    monkeypatch.setenv("INKSTREAM_DATABASE_URL", "postgresql://u:pw@db/x")
    pool = SandboxPool(workers=1)
    await pool.start()
    try:
        (pid,) = pool.pids
        with open(f"/proc/{pid}/environ", "rb") as environ:
            names = {entry.split(b"=", 1)[0].decode() for entry in environ.read().split(b"\0") if entry}
        assert not any(name.startswith("INKSTREAM_") for name in names), names
        assert await pool.call(FINE, "f", {"n": 1}) == {"n": 2}
    finally:
        await pool.close()


def test_workers_die_with_their_parent() -> None:
    """PR_SET_PDEATHSIG: SIGKILLing the API process must not leave orphaned workers."""
    if not sys.platform.startswith("linux"):
        pytest.skip("PR_SET_PDEATHSIG is Linux-only")
    script = textwrap.dedent(
        """
        import asyncio
        from adapters.sandbox.pool import SandboxPool
        async def main():
            pool = SandboxPool(workers=2)
            await pool.start()
            print(*pool.pids, flush=True)
            await asyncio.sleep(60)
        asyncio.run(main())
        """
    )
    owner = subprocess.Popen([sys.executable, "-c", script], cwd=REPO_ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert owner.stdout is not None
        pids = [int(p) for p in owner.stdout.readline().split()]
        assert len(pids) == 2
        os.kill(owner.pid, signal.SIGKILL)
        owner.wait()
        deadline = time.monotonic() + 5
        while any(alive(pid) for pid in pids) and time.monotonic() < deadline:
            time.sleep(0.05)
        survivors = [pid for pid in pids if alive(pid)]
        for pid in survivors:
            os.kill(pid, signal.SIGKILL)
        assert not survivors, "sandbox workers survived their parent's SIGKILL"
    finally:
        if owner.poll() is None:
            owner.kill()
            owner.wait()
        if owner.stdout is not None:
            owner.stdout.close()
