"""JavaScript sandbox: the process pool next to one owner thread, in the same run.

    python -m bench.sandbox [--quick]

Issue #9 asked for one of two designs that are safe under concurrency, and to
keep the one with more throughput:

* **pool**: ``adapters.sandbox.pool.SandboxPool``, worker processes (2, the
  default of ``INKSTREAM_SANDBOX_WORKERS``), one request each at a time;
* **owner thread** (the baseline, defined here): every V8 call through one
  thread of the calling process, one at a time, running the same
  ``adapters.sandbox.engine`` (fresh isolate per request, same limits), minus
  what only a process can have (the OS memory cap, surviving a V8 crash).

Each workload runs ``CONCURRENCY`` callers back to back for the measuring
window: ``compile_check`` of a small transform (a registration), ``call`` of
a trivial migration of a ~1 KB document, ``call`` of a CPU-bound migration
(2 million loop iterations: about 10 ms on an idle core, and 3 ms for the
trivial one), and ``call_many`` of 100 small documents per round trip
(counted in documents). Workers run at nice 5 (see worker.py): on a machine
that is busy with other work they get less CPU than the owner thread would. Beside each: p50/p99 latency, and the p99 lag of this
process's event loop meanwhile (a 10 ms sleep's overshoot), which is what the
API's other requests would feel. Rows go to bench/results/sandbox.json.
"""

from __future__ import annotations

import argparse
import asyncio
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

import orjson

from adapters.runtime.event_loop import run as run_event_loop
from adapters.sandbox import engine
from adapters.sandbox.pool import MB, SandboxPool, decode_outcome
from bench.event_store import percentile, print_table, write_results
from commands.ports import SandboxError

NAME = "sandbox"
CONCURRENCY = 8
WORKERS = 2
TIMEOUT_MS = 1000
MEMORY_MB = 64
BATCH = 100

T = TypeVar("T")

TRIVIAL = "function migrate(d) { d.version = 2; d.title = d.title.toUpperCase(); return d; }"
HEAVY = """function migrate(d) {
  var s = 0;
  for (var i = 0; i < 2e6; i++) s = (s + i * 7) % 1000003;
  d.checksum = s;
  return d;
}"""
DOCUMENT = {
    "title": "A benchmark book",
    "author": "Bench Author",
    "chapters": [{"title": f"Chapter {i}", "words": 1000 + i} for i in range(12)],
    "tags": ["bench", "inkstream", "fiction"],
}


class OwnerThreadSandbox:
    """The baseline: one thread owns V8 and runs requests one after another."""

    def __init__(self, timeout_ms: int = TIMEOUT_MS, max_memory_mb: int = MEMORY_MB) -> None:
        self.limits = engine.Limits(timeout_ms, max_memory_mb * MB)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="v8-owner", daemon=True)
        self._thread.start()
        self._lock = asyncio.Lock()  # used on the owner's loop only

    async def _serial(self, work: Callable[[], Coroutine[Any, Any, T]]) -> T:
        async with self._lock:
            return await work()

    async def _submit(self, work: Callable[[], Coroutine[Any, Any, T]]) -> T:
        # cancelling the caller cancels the owner's task, which terminates the JavaScript
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(self._serial(work), self._loop))

    async def compile_check(self, source: str, function: str) -> str | None:
        return await self._submit(lambda: engine.check(source, function, self.limits))

    async def call_many(self, source: str, function: str, arguments: list[Any]) -> list[Any | SandboxError]:
        texts = [orjson.dumps(a).decode() for a in arguments]
        outcomes = await self._submit(lambda: engine.run(source, function, texts, self.limits))
        return [decode_outcome(o, function) for o in outcomes]

    async def call(self, source: str, function: str, argument: Any) -> Any:
        (result,) = await self.call_many(source, function, [argument])
        if isinstance(result, SandboxError):
            raise result
        return result

    def close(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)


async def _loop_lag(stop: asyncio.Event, lags: list[float]) -> None:
    while not stop.is_set():
        began = time.perf_counter()
        await asyncio.sleep(0.01)
        lags.append(time.perf_counter() - began - 0.01)


async def closed_loop(op: Callable[[], Awaitable[int]], warmup: float, duration: float) -> dict[str, Any]:
    """``CONCURRENCY`` callers of ``op`` (which answers how many items it did) back to back."""
    t0 = time.perf_counter()
    start, end = t0 + warmup, t0 + warmup + duration
    latencies: list[float] = []
    items = 0
    lags: list[float] = []
    stop = asyncio.Event()

    async def caller() -> None:
        nonlocal items
        while (began := time.perf_counter()) < end:
            done_items = await op()
            done = time.perf_counter()
            if start <= done <= end:
                latencies.append(done - began)
                items += done_items

    lag = asyncio.create_task(_loop_lag(stop, lags))
    await asyncio.gather(*(caller() for _ in range(CONCURRENCY)))
    stop.set()
    await lag
    return {
        "rate": items / duration,
        "p50_ms": percentile(latencies, 50) * 1000,
        "p99_ms": percentile(latencies, 99) * 1000,
        "lag_p99_ms": percentile(lags, 99) * 1000,
    }


def workloads(box: Any) -> dict[str, Callable[[], Awaitable[int]]]:
    async def check() -> int:
        assert await box.compile_check(TRIVIAL, "migrate") is None
        return 1

    async def trivial() -> int:
        await box.call(TRIVIAL, "migrate", DOCUMENT)
        return 1

    async def heavy() -> int:
        await box.call(HEAVY, "migrate", DOCUMENT)
        return 1

    async def batch() -> int:
        results = await box.call_many(TRIVIAL, "migrate", [DOCUMENT] * BATCH)
        assert not any(isinstance(r, SandboxError) for r in results)
        return BATCH

    return {
        "compile_check (registration)": check,
        "call, trivial migration, 1 KB document": trivial,
        "call, CPU-bound migration (~10 ms)": heavy,
        f"call_many, {BATCH} documents per call (documents/s)": batch,
    }


async def run(quick: bool = False) -> list[dict[str, Any]]:
    warmup, duration = (0.5, 2.0) if quick else (1.0, 6.0)
    pool = SandboxPool(workers=WORKERS, timeout_ms=TIMEOUT_MS, max_memory_mb=MEMORY_MB)
    await pool.start()
    owner = OwnerThreadSandbox()
    rows: list[dict[str, Any]] = []
    try:
        for (name, pool_op), owner_op in zip(workloads(pool).items(), workloads(owner).values()):
            # interleaved, owner first, so neither design always runs on a warmer machine
            thread = await closed_loop(owner_op, warmup, duration)
            procs = await closed_loop(pool_op, warmup, duration)
            rows.append({
                "workload": name,
                "thread_per_s": thread["rate"], "thread_p50_ms": thread["p50_ms"], "thread_p99_ms": thread["p99_ms"],
                "thread_lag_p99_ms": thread["lag_p99_ms"],
                "pool_per_s": procs["rate"], "pool_p50_ms": procs["p50_ms"], "pool_p99_ms": procs["p99_ms"],
                "pool_lag_p99_ms": procs["lag_p99_ms"],
                "pool_over_thread": procs["rate"] / thread["rate"] if thread["rate"] else None,
            })  # fmt: skip
    finally:
        owner.close()
        await pool.close()
    print_table(
        f"JavaScript sandbox: one owner thread vs a pool of {WORKERS} worker processes, "
        f"{CONCURRENCY} concurrent callers, {duration:g} s each",
        rows,
        [
            ("workload", "workload"),
            ("thread_per_s", "thread /s"),
            ("thread_p50_ms", "p50 ms"),
            ("thread_p99_ms", "p99 ms"),
            ("thread_lag_p99_ms", "loop lag p99"),
            ("pool_per_s", "pool /s"),
            ("pool_p50_ms", "p50 ms"),
            ("pool_p99_ms", "p99 ms"),
            ("pool_lag_p99_ms", "loop lag p99"),
            ("pool_over_thread", "pool/thread"),
        ],
    )
    path = write_results(
        NAME, rows,
        {"quick": quick, "concurrency": CONCURRENCY, "workers": WORKERS, "duration_s": duration,
         "timeout_ms": TIMEOUT_MS, "memory_mb": MEMORY_MB},
    )  # fmt: skip
    print(f"results: {path}")
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.sandbox", description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short runs")
    run_event_loop(run(quick=parser.parse_args(argv).quick))


if __name__ == "__main__":
    main()
