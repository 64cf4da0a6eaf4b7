"""Read-your-writes under write load: from a command's answer to the default GET that sees it.

    python -m bench.read_your_writes [--quick] [--shared-pg]

Starts its own nats-server (``sync_interval: always``) and PostgreSQL (fsync
on), the app in this process (``start_system``, rate limits lifted). A child
process writes blobs open loop at a fixed rate (another user, untyped
``POST /v1/blobs``, requests sent on schedule whatever the answers) while a
probe in this process, one request at a time, creates a blob and at once
reads it back with the default consistency, which waits until the blobs
projection has reached the log position of the time of the query: the time
from the POST's answer to the GET's 200 is what read-your-writes costs a
client. Baseline in the same run, at the same load: the same GET of a blob
created earlier (nothing to wait for). Issue #15 asks for p99 < 25 ms at
1,000 commands/s. Rows go to bench/results/read_your_writes.json.
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from typing import Any

import aiohttp

from bench.common import bench_main, run_worker
from bench.event_store import own_nats, percentile, print_table, write_results
from bench.http import database

NAME = "read_your_writes"
PASSWORD = "bench-password-1"


async def _worker(spec: dict[str, Any]) -> dict[str, Any]:
    """Open loop: request i is sent at start + i / rate, answered or not (at most 2,000 in flight)."""
    rate, duration, url, headers = spec["rate"], spec["duration"], spec["url"], spec["headers"]
    statuses: dict[str, int] = {}
    in_flight = asyncio.Semaphore(2000)
    skipped = 0

    async def one(session: aiohttp.ClientSession, i: int) -> None:
        try:
            async with session.post(url, json={"data": {"n": i, "title": "load"}}, headers=headers) as r:
                await r.read()
                statuses[str(r.status)] = statuses.get(str(r.status), 0) + 1
        except (aiohttp.ClientError, asyncio.TimeoutError):
            statuses["error"] = statuses.get("error", 0) + 1
        finally:
            in_flight.release()

    tasks = []
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0), timeout=timeout) as session:
        start = time.perf_counter()
        for i in range(int(rate * duration)):
            delay = start + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            if in_flight.locked():
                skipped += 1
                continue
            await in_flight.acquire()
            tasks.append(asyncio.create_task(one(session, i)))
        sent_for = time.perf_counter() - start
        await asyncio.gather(*tasks)
    answered = statuses.get("201", 0)
    return {"rate": rate, "sent": len(tasks), "skipped": skipped, "answered_201": answered,
            "achieved_per_s": answered / max(sent_for, 1e-9), "statuses": statuses}  # fmt: skip


async def _register(http: aiohttp.ClientSession) -> dict[str, str]:
    body = {"email": f"u{uuid.uuid4().hex}@bench.example.com", "password": PASSWORD, "username": "bench"}
    async with http.post("/v1/auth/register", json=body) as r:
        reg = await r.json()
        assert r.status == 201, reg
    return {"Authorization": f"Bearer {reg['token']}"}


async def _probe(http: aiohttp.ClientSession, auth: dict[str, str], samples: int, stop_at: float) -> dict[str, list[float]]:
    async with http.post("/v1/blobs", json={"data": {"title": "settled"}}, headers=auth) as r:
        settled_id = (await r.json())["id"]
    out: dict[str, list[float]] = {"ryw": [], "settled": []}
    for i in range(samples):
        if time.perf_counter() > stop_at:
            break
        async with http.post("/v1/blobs", json={"data": {"title": f"probe {i}"}}, headers=auth) as r:
            created = await r.json()
            assert r.status == 201, created
        answered = time.perf_counter()
        async with http.get(f"/v1/blobs/{created['id']}", headers=auth) as r:
            await r.read()
            assert r.status == 200, r.status
        out["ryw"].append((time.perf_counter() - answered) * 1000)
        began = time.perf_counter()
        async with http.get(f"/v1/blobs/{settled_id}", headers=auth) as r:
            await r.read()
            assert r.status == 200, r.status
        out["settled"].append((time.perf_counter() - began) * 1000)
        await asyncio.sleep(0.01)
    return out


async def run(quick: bool = False, shared_pg: bool = False) -> list[dict[str, Any]]:
    from adapters.telemetry.logging import configure_logging
    from tests.support.system import start_system

    configure_logging(level="error")
    rates = [0, 500] if quick else [0, 250, 500, 1000]
    duration, samples = (4.0, 100) if quick else (8.0, 300)
    overrides = {"rate_limit_per_second": 1e9, "rate_limit_burst": 10**9,
                 "anonymous_rate_limit_per_second": 1e9, "anonymous_rate_limit_burst": 10**9, "sign_in_rate_per_second": 1e9, "sign_in_burst": 10**9, "log_level": "error"}  # fmt: skip
    started = time.perf_counter()
    rows: list[dict[str, Any]] = []
    async with own_nats() as nats_server, database(shared_pg) as (dsn, pg_desc):
        assert nats_server.url
        system = await start_system(nats_server.url, dsn, **overrides)
        try:
            async with aiohttp.ClientSession(base_url=system.base_url) as http:
                writer, prober = await _register(http), await _register(http)
                for rate in rates:
                    print(f"  writes at {rate}/s ...", flush=True)
                    load = None
                    if rate:
                        spec = {"rate": rate, "duration": duration, "url": f"{system.base_url}/v1/blobs", "headers": writer}
                        load = asyncio.create_task(run_worker("bench.read_your_writes", spec))
                        await asyncio.sleep(1.0)  # the load settles
                    stop_at = time.perf_counter() + (duration - 1.5 if rate else 30.0)
                    got = await _probe(http, prober, samples, stop_at)
                    achieved = (await load)["achieved_per_s"] if load else 0.0
                    rows.append({
                        "case": f"default GET after the POST answer, writes at {rate}/s (achieved {achieved:,.0f}/s)",
                        "samples": len(got["ryw"]),
                        "p50_ms": round(percentile(got["ryw"], 50), 2), "p99_ms": round(percentile(got["ryw"], 99), 2),
                        "baseline_case": "the same GET, nothing pending",
                        "base_p50_ms": round(percentile(got["settled"], 50), 2),
                        "base_p99_ms": round(percentile(got["settled"], 99), 2),
                        "ratio": round(percentile(got["ryw"], 99) / max(percentile(got["settled"], 99), 1e-9), 2),
                    })  # fmt: skip
        finally:
            await system.stop()
    meta = {"quick": quick, "postgres": pg_desc, "seconds": round(time.perf_counter() - started, 1),
            "loadavg_after": [round(x, 2) for x in os.getloadavg()]}  # fmt: skip
    print_table(
        f"bench.read_your_writes — open-loop writes beside a probe; PostgreSQL: {pg_desc}",
        rows,
        [("case", "inkstream"), ("samples", "n"), ("p50_ms", "p50 ms"), ("p99_ms", "p99 ms"),
         ("baseline_case", "baseline is"), ("base_p50_ms", "base p50"), ("base_p99_ms", "base p99"),
         ("ratio", "p99 ours/base")],
    )  # fmt: skip
    path = write_results(NAME, rows, meta)
    print(f"({meta['seconds']} s; rows in {path})")
    return rows


def main(argv: list[str] | None = None) -> None:
    bench_main("bench.read_your_writes", __doc__, "two rates, shorter runs", run, _worker, argv)


if __name__ == "__main__":
    main()
