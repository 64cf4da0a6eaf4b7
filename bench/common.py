"""What the HTTP benches share: a load generator in a child process, and their CLI."""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp

from adapters.runtime.event_loop import run as run_event_loop

ROOT = Path(__file__).resolve().parents[1]


async def run_worker(module: str, spec: dict[str, Any]) -> dict[str, Any]:
    """Run ``python -m <module> --worker SPEC`` so the load does not share the
    app's event loop; its stdout is the JSON result, with ``cpu_us``: this
    process's CPU (user and system) while the load ran, per request the load
    sent (``sent``). When the app under load runs in this process, that is the
    app's CPU per request: steadier than requests per second on a shared
    machine, since it does not depend on what else got the cores."""
    before = resource.getrusage(resource.RUSAGE_SELF)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", module, "--worker", json.dumps(spec),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, cwd=str(ROOT),
    )  # fmt: skip
    out, err = await proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"load worker failed ({proc.returncode}): {err.decode()[-2000:]}")
    after = resource.getrusage(resource.RUSAGE_SELF)
    result: dict[str, Any] = json.loads(out)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    result["cpu_us"] = round(cpu / result["sent"] * 1e6, 1) if result.get("sent") else None
    return result


def bench_main(
    prog: str,
    doc: str | None,
    quick_help: str,
    run: Callable[..., Awaitable[Any]],
    worker: Callable[[dict[str, Any]], Awaitable[Any]] | None = None,
    argv: list[str] | None = None,
) -> None:
    """``worker``: the load generator a bench runs in a child process (``--worker SPEC``), if any."""
    parser = argparse.ArgumentParser(prog=f"python -m {prog}", description=(doc or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help=quick_help)
    parser.add_argument("--shared-pg", action="store_true", help="a throwaway database on 127.0.0.1:5432")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        assert worker is not None, f"{prog} has no load worker"
        print(json.dumps(run_event_loop(worker(json.loads(args.worker)))))
        return
    run_event_loop(run(quick=args.quick, shared_pg=args.shared_pg))


async def closed_loop(
    spec: dict[str, Any], method: str, body: Callable[[], Any] | None, ok: Callable[[int], bool]
) -> dict[str, Any]:
    """``spec["concurrency"]`` clients send requests back to back; what completes inside
    the measuring window counts (slow requests such as register would otherwise vanish).
    ``rps`` counts the answers ``ok`` accepts; errors keep a few samples."""
    from bench.event_store import percentile

    url, headers = spec["url"], spec.get("headers") or {}
    t0 = time.perf_counter()
    start, end = t0 + spec["warmup"], t0 + spec["warmup"] + spec["duration"]
    latencies: list[float] = []
    statuses: dict[str, int] = {}
    errors: list[str] = []
    accepted = sent = 0

    async def client(session: aiohttp.ClientSession) -> None:
        nonlocal accepted, sent
        while True:
            began = time.perf_counter()
            if began >= end:
                return
            kwargs: dict[str, Any] = {"headers": headers}
            if body is not None:
                kwargs["json"] = body()
            try:
                async with session.request(method, url, **kwargs) as resp:
                    text = await resp.read()
                    status = resp.status
                    if not ok(status) and len(errors) < 5:
                        errors.append(f"{status} {text[:200]!r}")
            except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
                if len(errors) < 5:
                    errors.append(repr(exc))
                status = 0
            done = time.perf_counter()
            sent += 1
            if start <= done <= end:
                latencies.append(done - began)
                statuses[str(status)] = statuses.get(str(status), 0) + 1
                accepted += ok(status)

    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0), timeout=timeout) as session:
        await asyncio.gather(*(client(session) for _ in range(spec["concurrency"])))
    return {
        "count": len(latencies),
        "sent": sent,
        "rps": accepted / spec["duration"],
        "p50_ms": percentile(latencies, 50) * 1000,
        "p99_ms": percentile(latencies, 99) * 1000,
        "statuses": statuses,
        "errors": errors,
    }
