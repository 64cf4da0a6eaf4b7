"""HTTP throughput and latency of the real app, next to its ceiling and floor.

    python -m bench.http [--quick] [--shared-pg]

Starts its own nats-server (EmbeddedNats, ``sync_interval: always``) and, by
default, its own PostgreSQL (EmbeddedPostgres, fsync on) in temp dirs under
/tmp; with ``--shared-pg`` it creates (and drops) a throwaway database on the
PostgreSQL at postgresql://postgres@127.0.0.1:5432/postgres instead. The app
runs in this process through ``tests.support.system.start_system`` with rate
limits lifted; the load comes from a separate process (``--worker``) with
50 concurrent aiohttp clients, so client and server do not share one event loop.

Rows, side by side with their baselines:
* ``GET /v1/auth/me`` with a token (default read-your-writes consistency, and
  ``?consistency=eventual``) and ``GET /v1/blobs/{id}`` (default consistency,
  about 1 KB of data) vs a bare aiohttp handler returning a small JSON on the
  same machine, driven the same way (the framework's ceiling);
* the same default GETs on a system started again with the row cache off
  (``row_cache_bytes=0``: every GET asks PostgreSQL), same log and tables;
* ``POST /v1/auth/register`` with unique emails vs argon2 hashing with the
  app's parameters (its floor): ms per hash, and hashes/s with 50 concurrent
  ``Argon2Hasher.hash`` calls (threads, as the app does).
* ``inkstream api --workers 2`` (two API processes on one port, SO_REUSEPORT)
  vs ``inkstream api`` (one process), each a child process against the same
  servers with one ``inkstream project`` beside them, measured in interleaved
  rounds: ``GET /v1/auth/me`` and ``POST /v1/blobs`` (untyped).
Rows also go to bench/results/http.json.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import asyncpg
from aiohttp import web

from bench.common import bench_main, closed_loop, run_worker
from bench.event_store import own_nats, percentile, print_table, scratch_dir, write_results

NAME = "http"
CONCURRENCY = 50
SHARED_PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
PASSWORD = "bench-password-1"
# A small document (about 1 KB of JSON), as a chapter's metadata or a profile would be.
BLOB_DATA = {"title": "A chapter", "tags": ["draft", "fantasy"], "words": 1234,
             "summary": "The ship leaves the harbour at dawn. " * 24}


# --------------------------------------------------------------------------- load generator (child process)


def _registration() -> dict[str, str]:
    return {"email": f"b{uuid.uuid4().hex}@bench.example.com", "password": PASSWORD, "username": "bencher"}


async def _worker(spec: dict[str, Any]) -> dict[str, Any]:
    body = {"register": _registration, "blob": lambda: {"data": {"n": 1}}}.get(spec.get("body") or "")
    return await closed_loop(spec, spec["method"], body, lambda status: 200 <= status < 300)


async def drive(spec: dict[str, Any]) -> dict[str, Any]:
    """Run the load generator in a child process while this loop keeps serving."""
    result = await run_worker("bench.http", spec)
    bad = {k: v for k, v in result["statuses"].items() if not k.startswith("2")}
    if bad or result["errors"]:
        print(f"  ! {spec['method']} {spec['url']}: non-2xx {bad} errors {result['errors']}", flush=True)
    return result


def _median_run(results: list[dict[str, Any]]) -> dict[str, Any]:
    return sorted(results, key=lambda r: r["rps"])[(len(results) - 1) // 2]


# --------------------------------------------------------------------------- servers


@contextlib.asynccontextmanager
async def inkstream(*args: str, env: dict[str, str]) -> AsyncIterator[asyncio.subprocess.Process]:
    """``inkstream <args>`` as a child process, stopped with SIGTERM afterwards."""
    import signal
    import sys
    from pathlib import Path

    proc = await asyncio.create_subprocess_exec(str(Path(sys.executable).parent / "inkstream"), *args, env=env,
                                                stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
    try:
        yield proc
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
        await asyncio.wait_for(proc.wait(), 60)


async def wait_answering(url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession() as http:
        while True:
            try:
                async with http.get(f"{url}/health") as r:
                    if r.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{url} did not answer")
            await asyncio.sleep(0.2)


async def api_workers(nats_url: str, dsn: str, rounds: int, warmup: float, duration: float) -> dict[str, Any]:
    """``inkstream api`` (one process) vs ``inkstream api --workers 2``, interleaved rounds: median runs."""
    from adapters.runtime.processes import find_free_port

    data_dir = scratch_dir("ink-bench-workers-")
    env = {k: v for k, v in os.environ.items() if not k.startswith("INKSTREAM_")}
    env.update(INKSTREAM_NATS_URL=nats_url, INKSTREAM_DATABASE_URL=dsn, INKSTREAM_LOG_LEVEL="error",
               INKSTREAM_DATA_DIR=str(data_dir), INKSTREAM_JWT_SECRET="bench-workers-" + "s" * 40,
               INKSTREAM_RATE_LIMIT_PER_SECOND="1e9", INKSTREAM_RATE_LIMIT_BURST=str(10**9),
               INKSTREAM_ANONYMOUS_RATE_LIMIT_PER_SECOND="1e9", INKSTREAM_ANONYMOUS_RATE_LIMIT_BURST=str(10**9),
               INKSTREAM_SIGN_IN_RATE_PER_SECOND="1e9", INKSTREAM_SIGN_IN_BURST=str(10**9))
    runs: dict[str, list[dict[str, Any]]] = {"me_1": [], "me_2": [], "blob_1": [], "blob_2": []}
    token = ""
    try:
        async with inkstream("project", env=env):
            for _ in range(rounds):
                for workers in (1, 2):
                    port = find_free_port()
                    url = f"http://127.0.0.1:{port}"
                    async with inkstream("api", "--workers", str(workers), env={**env, "INKSTREAM_HTTP_PORT": str(port)}):
                        await wait_answering(url)
                        if workers == 2:
                            await asyncio.sleep(3)  # the second worker starts after the first listens
                        async with aiohttp.ClientSession() as http:
                            if not token:
                                body = {"email": f"w{uuid.uuid4().hex}@bench.example.com", "password": PASSWORD,
                                        "username": "w"}
                                async with http.post(f"{url}/v1/auth/register", json=body) as r:
                                    assert r.status == 201, await r.text()
                                    token = (await r.json())["token"]
                        auth = {"Authorization": f"Bearer {token}"}
                        common = {"concurrency": CONCURRENCY, "warmup": warmup, "duration": duration, "headers": auth}
                        runs[f"me_{workers}"].append(await drive({"url": f"{url}/v1/auth/me", "method": "GET", **common}))
                        runs[f"blob_{workers}"].append(await drive({"url": f"{url}/v1/blobs", "method": "POST",
                                                                    "body": "blob", **common}))
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)
    # the apps ran in processes of their own: this process's CPU says nothing about them
    return {k: {**_median_run(v), "cpu_us": None} for k, v in runs.items()}


@contextlib.asynccontextmanager
async def database(shared: bool) -> AsyncIterator[tuple[str, str]]:
    """(dsn, description): a fresh database on our own cluster, or on the shared server."""
    if shared:
        name = f"ink_bench_{uuid.uuid4().hex[:12]}"
        conn = await asyncpg.connect(SHARED_PG_ADMIN, timeout=2)
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()
        try:
            yield f"{SHARED_PG_ADMIN.rpartition('/')[0]}/{name}", f"throwaway database {name} on the shared PostgreSQL at 127.0.0.1:5432"
        finally:
            conn = await asyncpg.connect(SHARED_PG_ADMIN, timeout=5)
            try:
                await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            finally:
                await conn.close()
        return
    from adapters.runtime.postgres_server import EmbeddedPostgres

    root = scratch_dir("ink-bench-pg-")
    server = EmbeddedPostgres(root / "pg")
    try:
        dsn = await server.start()
        yield dsn, f"own EmbeddedPostgres (fsync on) on port {server.port}"
    finally:
        await server.stop()
        shutil.rmtree(root, ignore_errors=True)


@contextlib.asynccontextmanager
async def bare_app() -> AsyncIterator[str]:
    """The framework's ceiling: aiohttp returning a small JSON, no middleware."""

    async def handler(request: web.Request) -> web.Response:
        return web.json_response({"user_id": "0b7a3c1e-8d7f-4c0e-9d7b-1f2e3d4c5b6a", "email": "a@b.example", "version": 1})

    from tests.support.system import free_port

    app = web.Application()
    app.router.add_get("/bare", handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield f"http://127.0.0.1:{port}/bare"
    finally:
        await runner.cleanup()


async def argon2_floor(settings: Any, sequential: int, concurrent: int) -> dict[str, float]:
    from argon2 import PasswordHasher

    from adapters.security.passwords import Argon2Hasher

    raw = PasswordHasher(
        time_cost=settings.argon2_time_cost, memory_cost=settings.argon2_memory_kib, parallelism=settings.argon2_parallelism
    )
    times = []
    for i in range(sequential):
        t = time.perf_counter()
        raw.hash(f"{PASSWORD}{i}")
        times.append(time.perf_counter() - t)
    hasher = Argon2Hasher(settings.argon2_time_cost, settings.argon2_memory_kib, settings.argon2_parallelism)
    sem = asyncio.Semaphore(CONCURRENCY)

    async def one(i: int) -> None:
        async with sem:
            await hasher.hash(f"{PASSWORD}{i}")

    t = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(concurrent)))
    elapsed = time.perf_counter() - t
    return {"p50_ms": percentile(times, 50) * 1000, "p99_ms": percentile(times, 99) * 1000, "rps": concurrent / elapsed}


# --------------------------------------------------------------------------- the bench


async def run(quick: bool = False, shared_pg: bool = False) -> list[dict[str, Any]]:
    from adapters.runtime.settings import Settings
    from adapters.telemetry.logging import configure_logging
    from tests.support.system import start_system

    configure_logging(level="error")  # the drain at shutdown logs a disconnect warning
    duration, warmup, rounds = (1.5, 0.5, 1) if quick else (4.0, 1.0, 2)
    started = time.perf_counter()
    rows: list[dict[str, Any]] = []
    overrides = {
        "rate_limit_per_second": 1e9, "rate_limit_burst": 10**9,
        "anonymous_rate_limit_per_second": 1e9, "anonymous_rate_limit_burst": 10**9, "sign_in_rate_per_second": 1e9, "sign_in_burst": 10**9,
        "log_level": "error",
    }  # fmt: skip

    # The floor first, on an idle machine (later the projector would compete for the cores).
    floor = await argon2_floor(Settings(), 5 if quick else 30, 20 if quick else 200)
    async with own_nats() as nats_server, database(shared_pg) as (dsn, pg_desc):
        assert nats_server.url
        system = await start_system(nats_server.url, dsn, **overrides)
        try:
            async with aiohttp.ClientSession(base_url=system.base_url) as http:
                body = {"email": f"me{uuid.uuid4().hex}@bench.example.com", "password": PASSWORD, "username": "me"}
                async with http.post("/v1/auth/register", json=body) as r:
                    assert r.status == 201, await r.text()
                    token = (await r.json())["token"]
                auth = {"Authorization": f"Bearer {token}"}
                async with http.get("/v1/auth/me", headers=auth) as r:  # waits for the projection
                    assert r.status == 200, await r.text()
                async with http.post("/v1/blobs", json={"data": BLOB_DATA}, headers=auth) as r:
                    assert r.status == 201, await r.text()
                    blob_url = f"{system.base_url}/v1/blobs/{(await r.json())['id']}"

            def spec(url: str, method: str = "GET", **extra: Any) -> dict[str, Any]:
                return {"url": url, "method": method, "concurrency": CONCURRENCY, "warmup": warmup, "duration": duration, **extra}

            # GETs in interleaved rounds (the machine is shared and noisy); the median round by req/s is kept.
            gets = {"me": f"{system.base_url}/v1/auth/me", "me_eventual": f"{system.base_url}/v1/auth/me?consistency=eventual",
                    "blob": blob_url}  # fmt: skip
            runs: dict[str, list[dict[str, Any]]] = {"bare": [], **{k: [] for k in gets}}
            async with bare_app() as bare_url:
                for _ in range(rounds):
                    runs["bare"].append(await drive(spec(bare_url)))
                    for key, url in gets.items():
                        runs[key].append(await drive(spec(url, headers=auth)))
            bare, me, me_eventual, blob = (_median_run(runs[k]) for k in ("bare", "me", "me_eventual", "blob"))
            rows_kept = system.services.reads.model.rows
            hit_ratio = rows_kept.hits / max(1, rows_kept.hits + rows_kept.misses) if rows_kept else 0.0
            reg = await drive({**spec(f"{system.base_url}/v1/auth/register", "POST", body="register"),
                               "warmup": max(warmup, 1.0), "duration": duration * 1.5})  # fmt: skip
        finally:
            await system.stop()
        # The same GETs with the row cache off (every GET asks PostgreSQL), same log, same tables.
        print("  the same GETs with the row cache off ...", flush=True)
        system = await start_system(nats_server.url, dsn, **overrides, row_cache_bytes=0)
        try:
            uncached: dict[str, list[dict[str, Any]]] = {"me": [], "blob": []}
            blob_path = blob_url.partition("/v1/")[2]
            for _ in range(rounds):
                uncached["me"].append(await drive(spec(f"{system.base_url}/v1/auth/me", headers=auth)))
                uncached["blob"].append(await drive(spec(f"{system.base_url}/v1/{blob_path}", headers=auth)))
            me_uncached, blob_uncached = _median_run(uncached["me"]), _median_run(uncached["blob"])
        finally:
            await system.stop()
        print("  api --workers 2 vs one api process ...", flush=True)
        workers = await api_workers(nats_server.url, dsn, rounds + 1, warmup, duration)

    def row(case: str, got: dict[str, Any], base_case: str, base: dict[str, Any]) -> dict[str, Any]:
        return {
            "case": case, "rps": round(got["rps"], 1), "p50_ms": round(got["p50_ms"], 2), "p99_ms": round(got["p99_ms"], 2),
            "requests": got.get("count"), "statuses": got.get("statuses"),
            "baseline_case": base_case, "base_rps": round(base["rps"], 1), "base_p50_ms": round(base["p50_ms"], 2),
            "base_p99_ms": round(base["p99_ms"], 2), "ratio_rps": round(got["rps"] / base["rps"], 3),
            "cpu_us": got.get("cpu_us"), "base_cpu_us": base.get("cpu_us"),
        }  # fmt: skip

    rows += [
        row("GET /v1/auth/me (token)", me, "bare aiohttp JSON handler", bare),
        row("GET /v1/auth/me?consistency=eventual", me_eventual, "bare aiohttp JSON handler", bare),
        row("GET /v1/blobs/{id} (token, 1 KB of data)", blob, "bare aiohttp JSON handler", bare),
        row("GET /v1/auth/me, row cache on", me, "the same, row cache off", me_uncached),
        row("GET /v1/blobs/{id}, row cache on", blob, "the same, row cache off", blob_uncached),
        row("POST /v1/auth/register (unique emails)", reg, "argon2 hash (p50/p99 seq; /s at 50 conc)", floor),
        row("GET /v1/auth/me, inkstream api --workers 2", workers["me_2"], "the same, inkstream api (1 process)",
            workers["me_1"]),
        row("POST /v1/blobs untyped, inkstream api --workers 2", workers["blob_2"],
            "the same, inkstream api (1 process)", workers["blob_1"]),
    ]
    meta = {
        "quick": quick,
        "seconds": round(time.perf_counter() - started, 1),
        "concurrency": CONCURRENCY,
        "duration_s": duration,
        "rounds": rounds,
        "warmup_s": warmup,
        "nats": "own EmbeddedNats (sync_interval: always)",
        "postgres": pg_desc,
        "load": "separate process, one aiohttp ClientSession, 50 concurrent clients",
        "loadavg_after": [round(x, 2) for x in os.getloadavg()],
        "row_cache_hit_ratio": round(hit_ratio, 4),
    }
    print_table(
        f"bench.http — {'quick, ' if quick else ''}{CONCURRENCY} clients x {duration:g} s x {rounds} round(s); PostgreSQL: {pg_desc}",
        rows,
        [("case", "request"), ("rps", "req/s"), ("p50_ms", "p50 ms"), ("p99_ms", "p99 ms"),
         ("baseline_case", "baseline is"), ("base_rps", "base/s"), ("base_p50_ms", "base p50"),
         ("base_p99_ms", "base p99"), ("ratio_rps", "ours/base"), ("cpu_us", "app CPU us/req"),
         ("base_cpu_us", "base CPU us/req")],
    )  # fmt: skip
    print("app CPU us/req: this process's CPU per request while the load ran (the app and the bare handler run "
          "here; the api --workers rows are left empty: those apps ran in processes of their own)")
    path = write_results(NAME, rows, meta)
    print(f"({meta['seconds']} s; rows in {path})")
    return rows


def main(argv: list[str] | None = None) -> None:
    bench_main("bench.http", __doc__, "1.5 s per measurement instead of 6 s", run, _worker, argv)


if __name__ == "__main__":
    main()
