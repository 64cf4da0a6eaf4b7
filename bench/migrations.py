"""Migration runs: blobs migrated per second, batched sandbox calls against one call per blob, in the same run.

    python -m bench.migrations [--quick] [--shared-pg]

Starts its own nats-server and PostgreSQL (``--shared-pg``: a throwaway
database on 127.0.0.1:5432); the API and the projectors run in this process
(``start_system`` without a runner), and so does one job runner built here
with a sandbox pool of ``WORKERS`` workers (a runner's pool), once per case:

* **batched**: the runner as shipped, batches of 100 blobs, one ``call_many``
  per batch and transform (many documents per sandbox round trip);
* **one call per blob**: the same runner and batches, but one sandbox ``call``
  per blob (all the batch's calls at once, spread over the pool's workers);
* **dry run**: batched, writing nothing (transform and validate only).

Each case migrates its own ``N`` blobs of the seed's Task 12 schema
(user-profile 1.0.0 → 2.0.0) written beforehand through the API. The rate is
``total / (started_at → finished_at)`` of the run, as the migrations read
model records them (the runner's clock). Rows go to bench/results/migrations.json.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
import uuid
from typing import Any

import aiohttp

from bench.common import bench_main
from bench.event_store import own_nats, print_table, write_results
from bench.http import database

NAME = "migrations"
WORKERS = 2
BATCH = 100
CONCURRENCY = 32
V1 = {"type": "object", "properties": {"name": {"type": "string"}, "age": {"type": "number"}}}
V2 = {"type": "object", "properties": {"name": {"type": "string"}, "birthYear": {"type": "number"},
                                       "email": {"type": "string"}}}
TO_V2 = ("function migrate(data) { return {name: data.name, birthYear: new Date().getFullYear() - data.age, "
         "email: \"\"}; }")


async def _blobs(http: aiohttp.ClientSession, headers: dict[str, str], schema: str, count: int) -> None:
    gate = asyncio.Semaphore(CONCURRENCY)

    async def one(i: int) -> None:
        async with gate:
            body = {"data": {"name": f"Person {i}", "age": 20 + i % 50}, "schema_id": schema}
            async with http.post("/v1/blobs", json=body, headers=headers) as r:
                assert r.status == 201, await r.text()

    await asyncio.gather(*(one(i) for i in range(count)))


async def _schema(http: aiohttp.ClientSession, headers: dict[str, str]) -> str:
    name = f"user-profile-{uuid.uuid4().hex[:8]}"
    for version, schema, migration in (("1.0.0", V1, None), ("2.0.0", V2, {"from_version": "1.0.0",
                                                                             "transform": TO_V2})):
        body: dict[str, Any] = {"name": name, "version": version, "schema": schema}
        if migration:
            body["migration"] = migration
        async with http.post("/v1/schemas", json=body, headers=headers) as r:
            assert r.status == 201, await r.text()
    return name


async def _run(http: aiohttp.ClientSession, headers: dict[str, str], name: str, dry_run: bool,
               timeout: float) -> dict[str, Any]:
    body = {"schema_id": f"{name}@2.0.0", "from_version": "1.0.0", "dry_run": dry_run}
    async with http.post("/v1/migrations", json=body, headers=headers) as r:
        assert r.status == 202, await r.text()
        run_id = (await r.json())["id"]
    deadline = time.monotonic() + timeout
    while True:
        async with http.get(f"/v1/migrations/{run_id}", params={"consistency": "eventual"}, headers=headers) as r:
            run = await r.json()
        if run["status"] in ("completed", "failed"):
            return run
        if time.monotonic() > deadline:
            raise RuntimeError(f"migration {run_id} did not finish within {timeout} s: {run}")
        await asyncio.sleep(0.05)


async def run(quick: bool = False, shared_pg: bool = False) -> list[dict[str, Any]]:
    from datetime import datetime

    from adapters.jobs.migrations import MigrationOptions
    from adapters.jobs.runner import JobRunner, RunnerOptions
    from adapters.sandbox.pool import SandboxPool
    from adapters.telemetry.logging import configure_logging
    from tests.support.system import start_system
    from tests.support.users import new_user

    configure_logging(level="error")
    count = 500 if quick else 2000
    started = time.perf_counter()
    overrides = {
        "rate_limit_per_second": 1e9, "rate_limit_burst": 10**9,
        "anonymous_rate_limit_per_second": 1e9, "anonymous_rate_limit_burst": 10**9, "sign_in_rate_per_second": 1e9, "sign_in_burst": 10**9, "log_level": "error",
    }  # fmt: skip
    cases = (("batched (call_many, 100 per call)", False, False),
             ("one sandbox call per blob", True, False),
             ("dry run, batched", False, True))
    rows: list[dict[str, Any]] = []
    async with own_nats() as nats_server, database(shared_pg) as (dsn, pg_desc):
        assert nats_server.url
        print(f"bench.migrations: PostgreSQL = {pg_desc}", flush=True)
        system = await start_system(nats_server.url, dsn, run_jobs=False, **overrides)
        services = system.services
        try:
            async with aiohttp.ClientSession(base_url=system.base_url,
                                             connector=aiohttp.TCPConnector(limit=0)) as http:
                user = await new_user(http, "bench")
                for case, per_blob, dry_run in cases:
                    name = await _schema(http, user.headers)
                    await _blobs(http, user.headers, f"{name}@1.0.0", count)
                    sandbox = SandboxPool(workers=WORKERS, timeout_ms=1000, max_memory_mb=64)
                    await sandbox.start()
                    runner = JobRunner(system.running.nc, services.bus, services.job_reads,
                                       services.processor_types, RunnerOptions(concurrency=2),
                                       migrations=services.migration_reads, sandbox=sandbox,
                                       migration_options=MigrationOptions(batch_size=BATCH,
                                                                          per_blob_sandbox_calls=per_blob))
                    task = asyncio.create_task(runner.run())
                    try:
                        result = await _run(http, user.headers, name, dry_run, timeout=900)
                    finally:
                        task.cancel()
                        with contextlib.suppress(asyncio.CancelledError):
                            await task
                        await sandbox.close()
                    seconds = (datetime.fromisoformat(result["finished_at"])
                               - datetime.fromisoformat(result["started_at"])).total_seconds()
                    batches = -(-result["total"] // BATCH)
                    rows.append({
                        "case": case, "blobs": result["total"], "migrated": result["migrated"],
                        "failed": result["failed"], "skipped": result["skipped"],
                        "seconds": round(seconds, 2), "blobs_s": round(result["total"] / seconds, 1),
                        "sandbox_calls": result["total"] if per_blob else batches,
                    })  # fmt: skip
        finally:
            await system.stop()
    base = next(r for r in rows if r["case"].startswith("one sandbox call"))["blobs_s"]
    for row in rows:
        row["vs_per_blob"] = round(row["blobs_s"] / base, 2)
    meta = {
        "quick": quick,
        "seconds": round(time.perf_counter() - started, 1),
        "blobs_per_case": count,
        "batch_size": BATCH,
        "sandbox_workers": WORKERS,
        "nats": "own EmbeddedNats (sync_interval: always)",
        "postgres": pg_desc,
        "loadavg_after": [round(x, 2) for x in os.getloadavg()],
    }
    print_table(
        f"bench.migrations — {'quick, ' if quick else ''}{count} blobs per case, user-profile 1.0.0 → 2.0.0; "
        f"PostgreSQL: {pg_desc}",
        rows,
        [("case", "run"), ("blobs", "blobs"), ("migrated", "migrated"), ("seconds", "s"),
         ("blobs_s", "blobs/s"), ("sandbox_calls", "sandbox calls"), ("vs_per_blob", "× one call per blob")],
    )  # fmt: skip
    path = write_results(NAME, rows, meta)
    print(f"({meta['seconds']} s; rows in {path})")
    return rows


def main(argv: list[str] | None = None) -> None:
    bench_main("bench.migrations", __doc__, "500 blobs per case", run, argv=argv)


if __name__ == "__main__":
    main()
