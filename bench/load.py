"""The seed's Task 8 at full speed: 50 users x 10 x (create book + create blob).

    python -m bench.load [--quick] [--shared-pg]

Starts its own nats-server (EmbeddedNats, ``sync_interval: always``) and, by
default, its own PostgreSQL (EmbeddedPostgres, fsync on) under /tmp;
``--shared-pg`` uses a throwaway database on 127.0.0.1:5432 instead. The app
runs in this process (``start_system``, rate limits lifted so that they do not
set the pace); the 50 users run in a child process (``--worker``), each one
doing its 10 x (``POST /v1/books`` then ``POST /v1/blobs`` with the book's id)
one after the other, as the seed's test does. A round is that whole burst;
several rounds run (the projectors drain in between) and the median round by
ops/s is kept; latency percentiles pool every round.

Baseline, interleaved with the rounds, from a child process as well: the same number of raw
``JetStreamEventStore.append`` calls (fresh aggregates, a blob-sized event)
from 50 concurrent writers: the log's own pace for that many writes.
Rows go to bench/results/load.json.
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from datetime import datetime, timezone
from typing import Any

import aiohttp

from bench.common import bench_main, run_worker
from bench.event_store import own_nats, percentile, print_table, write_results
from bench.http import database

NAME = "load"
USERS = 50
OPS_PER_USER = 10
PASSWORD = "bench-password-1"


# --------------------------------------------------------------------------- the users (child process)


async def _worker(spec: dict[str, Any]) -> dict[str, Any]:
    if spec.get("mode") == "raw":
        return await _raw_worker(spec)
    base = spec["base_url"]
    book_ms: list[float] = []
    blob_ms: list[float] = []
    errors: list[str] = []

    async def user(session: aiohttp.ClientSession, u: dict[str, str]) -> int:
        headers = {"Authorization": f"Bearer {u['token']}"}
        done = 0
        for j in range(spec["ops_per_user"]):
            t = time.perf_counter()
            try:
                async with session.post(f"{base}/v1/books", json={"title": f"Book {j}"}, headers=headers) as r:
                    book = await r.json(content_type=None)
                    status = r.status
            except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
                errors.append(f"create book: {exc!r}")
                continue
            book_ms.append((time.perf_counter() - t) * 1000)
            if status != 201:
                errors.append(f"create book: {status} {str(book)[:200]}")
                continue
            done += 1
            payload = {"data": {"book_id": book["id"], "content": "Test content"}, "user_id": u["user_id"]}
            t = time.perf_counter()
            try:
                async with session.post(f"{base}/v1/blobs", json=payload, headers=headers) as r:
                    text = await r.read()
                    status = r.status
            except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
                errors.append(f"create blob: {exc!r}")
                continue
            blob_ms.append((time.perf_counter() - t) * 1000)
            if status != 201:
                errors.append(f"create blob: {status} {text[:200]!r}")
                continue
            done += 1
        return done

    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0), timeout=timeout) as session:
        started = time.perf_counter()
        done = await asyncio.gather(*(user(session, u) for u in spec["users"]))
        duration = time.perf_counter() - started
    return {"ops": sum(done), "duration": duration, "book_ms": book_ms, "blob_ms": blob_ms,
            "errors": len(errors), "error_samples": errors[:5]}  # fmt: skip


async def drive(spec: dict[str, Any]) -> dict[str, Any]:
    result = await run_worker("bench.load", spec)
    if result.get("errors"):
        print(f"  ! {result['errors']} errors, e.g. {result['error_samples']}", flush=True)
    return result


# --------------------------------------------------------------------------- the baseline


async def raw_appends(store: Any, count: int, writers: int) -> dict[str, Any]:
    """``count`` appends of a blob-sized event on fresh aggregates, ``writers`` at a time."""
    from domain.recorded import NewEvent

    data = {"owner_id": str(uuid.uuid4()), "schema_id": None, "processor_id": None, "bucket_ids": [],
            "data": {"book_id": str(uuid.uuid4()), "content": "Test content"}}  # fmt: skip
    latencies: list[float] = []
    share = [count // writers + (1 if i < count % writers else 0) for i in range(writers)]

    async def writer(n: int) -> None:
        for _ in range(n):
            event = NewEvent(type="BenchLoad.Created", version=1, at=datetime.now(timezone.utc), data=data,
                             actor="bench")  # fmt: skip
            t = time.perf_counter()
            await store.append("BenchLoad", uuid.uuid4().hex, event, 0, uuid.uuid4().hex)
            latencies.append((time.perf_counter() - t) * 1000)

    started = time.perf_counter()
    await asyncio.gather(*(writer(n) for n in share))
    duration = time.perf_counter() - started
    return {"ops": count, "duration": duration, "ms": latencies}


async def _raw_worker(spec: dict[str, Any]) -> dict[str, Any]:
    """The baseline from a child process too, so neither side shares the app's event loop."""
    import nats

    from adapters.jetstream.event_store import JetStreamEventStore

    nc = await nats.connect(spec["nats_url"])
    try:
        store = JetStreamEventStore(nc, publish_timeout=30.0)
        await raw_appends(store, 200, spec["writers"])  # warm: connection, subjects
        return await raw_appends(store, spec["count"], spec["writers"])
    finally:
        await nc.drain()


# --------------------------------------------------------------------------- the bench


async def run(quick: bool = False, shared_pg: bool = False) -> list[dict[str, Any]]:
    from adapters.telemetry.logging import configure_logging
    from tests.support.system import start_system
    from tests.support.users import new_user

    configure_logging(level="error")
    rounds = 1 if quick else 9
    started = time.perf_counter()
    overrides = {
        "rate_limit_per_second": 1e9, "rate_limit_burst": 10**9,
        "anonymous_rate_limit_per_second": 1e9, "anonymous_rate_limit_burst": 10**9, "sign_in_rate_per_second": 1e9, "sign_in_burst": 10**9,
        "log_level": "error",
    }  # fmt: skip
    total = USERS * OPS_PER_USER * 2
    http_runs: list[dict[str, Any]] = []
    raw_runs: list[dict[str, Any]] = []

    async with own_nats() as nats_server, database(shared_pg) as (dsn, pg_desc):
        assert nats_server.url
        print(f"bench.load: PostgreSQL = {pg_desc}", flush=True)
        system = await start_system(nats_server.url, dsn, **overrides)
        try:
            for r in range(rounds):
                async with aiohttp.ClientSession(base_url=system.base_url) as http:
                    users = await asyncio.gather(*(new_user(http, f"load{r}x{i}") for i in range(USERS)))
                watch, last = system.running.watch, await system.services.store.last_position()
                await watch.wait(last, [p.name for p in system.services.projections], 30)
                spec = {"base_url": system.base_url, "ops_per_user": OPS_PER_USER,
                        "users": [{"token": u.token, "user_id": u.user_id} for u in users]}  # fmt: skip
                http_runs.append(await drive(spec))
                # Let the projectors drain the burst, so each round starts from an idle system.
                last = await system.services.store.last_position()
                await watch.wait(last, [p.name for p in system.services.projections], 60)
                raw_runs.append(await drive({"mode": "raw", "nats_url": nats_server.url, "count": total,
                                             "writers": USERS}))  # fmt: skip
                last = await system.services.store.last_position()
                await watch.wait(last, [p.name for p in system.services.projections], 60)
        finally:
            await system.stop()

    def rate(run: dict[str, Any]) -> float:
        return run["ops"] / run["duration"]

    med_http = sorted(http_runs, key=rate)[(len(http_runs) - 1) // 2]
    med_raw = sorted(raw_runs, key=rate)[(len(raw_runs) - 1) // 2]
    books = [x for run in http_runs for x in run["book_ms"]]
    blobs = [x for run in http_runs for x in run["blob_ms"]]
    both = books + blobs
    raw_ms = [x for run in raw_runs for x in run["ms"]]
    errors = sum(run["errors"] for run in http_runs)
    raw_rate = rate(med_raw)

    def row(case: str, value: float, p50: float, p99: float, ratio: bool = True, **extra: Any) -> dict[str, Any]:
        return {"case": case, "ops_s": round(value, 1), "p50_ms": round(p50, 2), "p99_ms": round(p99, 2),
                "baseline_case": f"store.append x {total}, {USERS} writers", "base_ops_s": round(raw_rate, 1),
                "base_p50_ms": round(percentile(raw_ms, 50), 2), "base_p99_ms": round(percentile(raw_ms, 99), 2),
                "ratio": round(value / raw_rate, 3) if ratio else None, **extra}  # fmt: skip

    rows = [
        row(f"{USERS} users x {OPS_PER_USER} x (book + blob), all ops", rate(med_http), percentile(both, 50),
            percentile(both, 99), ops=med_http["ops"], of=total, seconds=round(med_http["duration"], 3),
            errors=errors, error_rate=round(errors / (total * rounds), 4)),
        row("  of which POST /v1/books", len(med_http["book_ms"]) / med_http["duration"], percentile(books, 50),
            percentile(books, 99), ratio=False),
        row("  of which POST /v1/blobs (untyped, as the seed)", len(med_http["blob_ms"]) / med_http["duration"],
            percentile(blobs, 50), percentile(blobs, 99), ratio=False),
    ]  # fmt: skip
    meta = {
        "quick": quick,
        "seconds": round(time.perf_counter() - started, 1),
        "rounds": rounds,
        "users": USERS,
        "ops_per_user": OPS_PER_USER,
        "round_ops_s": [round(rate(r), 1) for r in http_runs],
        "round_seconds": [round(r["duration"], 3) for r in http_runs],
        "raw_round_ops_s": [round(rate(r), 1) for r in raw_runs],
        "errors_total": errors,
        "nats": "own EmbeddedNats (sync_interval: always)",
        "postgres": pg_desc,
        "load": "separate process, one aiohttp ClientSession; each user sequential, 50 users concurrent; fresh users per round",
        "note": "ops/s: median round (all ops / burst duration); p50/p99 pooled over every round; rate limits lifted",
        "loadavg_after": [round(x, 2) for x in os.getloadavg()],
    }
    print_table(
        f"bench.load — {'quick, ' if quick else ''}seed Task 8, {rounds} round(s), {total} ops each, "
        f"{errors} errors in all; PostgreSQL: {pg_desc}",
        rows,
        [("case", "inkstream"), ("ops_s", "ops/s"), ("p50_ms", "p50 ms"), ("p99_ms", "p99 ms"),
         ("baseline_case", "baseline is"), ("base_ops_s", "base/s"), ("base_p50_ms", "base p50"),
         ("base_p99_ms", "base p99"), ("ratio", "ours/base")],
    )  # fmt: skip
    print(f"burst: {med_http['ops']}/{total} ops in {med_http['duration']:.2f} s (median round); "
          f"rounds ops/s {meta['round_ops_s']}; errors {errors}/{total * rounds}")  # fmt: skip
    path = write_results(NAME, rows, meta)
    print(f"({meta['seconds']} s; rows in {path})")
    return rows


def main(argv: list[str] | None = None) -> None:
    bench_main("bench.load", __doc__, "one round instead of nine", run, _worker, argv)


if __name__ == "__main__":
    main()
