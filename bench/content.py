"""Content: create-blob over HTTP, projection catch-up, read-your-writes, next to their peers.

    python -m bench.content [--quick] [--shared-pg]

Starts its own nats-server (EmbeddedNats, ``sync_interval: always``) and, by
default, its own PostgreSQL (EmbeddedPostgres, fsync on) in temp dirs under
/tmp; ``--shared-pg`` uses a throwaway database on the PostgreSQL at
127.0.0.1:5432 instead. The app runs in this process (``start_system``, rate
limits lifted); HTTP load comes from a child process (``--worker``).

(a) ``POST /v1/blobs`` with schema validation (a schema with typed, required,
    formatted properties; every blob valid; filed in a bucket), 50 concurrent
    clients of one user: commands/s, p50/p99. Attribution: untyped, no bucket.
(c) read-your-writes, one client: after the POST answer, the default-consistency
    GET (it waits for the projection through the NOTIFY watch), polling
    ``?consistency=eventual`` until 200, and when the projector's NOTIFY for
    the command's position reaches a LISTEN connection here.
(b) with the app stopped: 100k blob events (Created + Updated, 50 writers
    through ``JetStreamEventStore.append``; setup, reported but not the point),
    then ``rebuild()`` of the blobs projection from position 0: events/s.
    Before/after: the row-by-row rebuild the COPY rebuild replaced, same log.

Baselines in the same run:
* plain asyncpg: the same blob rows (each event's resulting row, and the
  memberships) upserted with ``executemany`` in batches of 2000 per transaction
  into scratch copies of the read-model tables: what PostgreSQL itself allows;
* the ``eventsourcing`` library's own PostgreSQL persistence
  (``PERSISTENCE_MODULE=eventsourcing.postgres``, a dev-only dependency): an
  ``Application`` saving the same Blob events, one aggregate per save (one
  event per save, as a command does), from 50 threads.
Rows go to bench/results/content.json.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import unquote, urlsplit

import aiohttp
import asyncpg

from bench.common import bench_main, closed_loop, run_worker
from bench.event_store import own_nats, percentile, print_table, write_results
from bench.http import database

NAME = "content"
CONCURRENCY = 50
PASSWORD = "bench-password-1"
BATCH = 2000  # rows per transaction, as rebuild() batches events

BOOK_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "properties": {
        "title": {"type": "string", "minLength": 1, "maxLength": 200},
        "author": {"type": "string", "minLength": 1},
        "pages": {"type": "integer", "minimum": 1},
        "isbn": {"type": "string", "pattern": "^[0-9]{13}$"},
        "published": {"type": "string", "format": "date"},
        "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 10},
    },
    "required": ["title", "author", "pages"],
    "additionalProperties": False,
}


def book_data(i: int) -> dict[str, Any]:
    return {
        "title": f"A benchmark book {i}",
        "author": "Bench Author",
        "pages": 100 + i % 400,
        "isbn": f"{9780000000000 + i % 10**9:013d}",
        "published": "2024-05-17",
        "tags": ["bench", "inkstream", "fiction"],
    }


# --------------------------------------------------------------------------- load generator (child process)


async def _worker(spec: dict[str, Any]) -> dict[str, Any]:
    """Closed loop: ``concurrency`` clients POST blobs; what completes inside the window counts."""
    template: dict[str, Any] = spec["body"]
    counter = iter(range(10**9))
    return await closed_loop(
        spec, "POST", lambda: {**template, "data": book_data(next(counter))}, lambda status: status == 201
    )


async def drive(spec: dict[str, Any]) -> dict[str, Any]:
    result = await run_worker("bench.content", spec)
    bad = {k: v for k, v in result["statuses"].items() if k != "201"}
    if bad or result["errors"]:
        print(f"  ! POST {spec['url']}: non-201 {bad} errors {result['errors']}", flush=True)
    return result


# --------------------------------------------------------------------------- (c) read-your-writes


async def read_your_writes(
    http: aiohttp.ClientSession, auth: dict[str, str], body: dict[str, Any], dsn: str, samples: int
) -> dict[str, list[float]]:
    """Delays (ms) measured from the moment the POST answer has been read."""
    notified: list[tuple[int, float]] = []  # (position, perf_counter at arrival)
    arrived = asyncio.Event()

    def on_notify(_c: object, _pid: int, _ch: str, payload: str) -> None:
        name, _, pos = payload.rpartition(":")
        if name == "blobs":
            notified.append((int(pos), time.perf_counter()))
            arrived.set()

    from adapters.postgres.projector import NOTIFY_CHANNEL

    listener = await asyncpg.connect(dsn)
    await listener.add_listener(NOTIFY_CHANNEL, on_notify)
    out: dict[str, list[float]] = {"get_default": [], "get_settled": [], "notify": [], "eventual_poll": [], "polls": []}

    async def post(i: int) -> tuple[str, int, float]:
        async with http.post("/v1/blobs", json={**body, "data": book_data(i)}, headers=auth) as r:
            created = await r.json()
            assert r.status == 201, created
        return created["id"], int(created["position"]), time.perf_counter()

    async def notified_at(position: int) -> float:
        async with asyncio.timeout(5):
            while True:
                for pos, at in notified:
                    if pos >= position:
                        return at
                arrived.clear()
                await arrived.wait()

    try:
        for i in range(samples):
            blob_id, position, answered = await post(i)
            waiter = asyncio.create_task(notified_at(position))
            async with http.get(f"/v1/blobs/{blob_id}", headers=auth) as r:
                await r.read()
                assert r.status == 200, (r.status, await r.text())
            out["get_default"].append((time.perf_counter() - answered) * 1000)
            out["notify"].append((await waiter - answered) * 1000)
            began = time.perf_counter()  # nothing pending now: the same GET, as a reference
            async with http.get(f"/v1/blobs/{blob_id}", headers=auth) as r:
                await r.read()
                assert r.status == 200
            out["get_settled"].append((time.perf_counter() - began) * 1000)
            notified.clear()
        for i in range(samples):
            blob_id, _, answered = await post(samples + i)
            polls = 0
            while True:
                polls += 1
                async with http.get(f"/v1/blobs/{blob_id}?consistency=eventual", headers=auth) as r:
                    await r.read()
                    if r.status == 200:
                        break
                    assert r.status == 404, r.status
            out["eventual_poll"].append((time.perf_counter() - answered) * 1000)
            out["polls"].append(polls)
    finally:
        await listener.close()
    return out


# --------------------------------------------------------------------------- (b) catch-up and its baselines


def blob_events(count: int, owner_id: str, schema_id: str, bucket_id: str) -> list[list[Any]]:
    """``count`` events as [[Created, Updated], ...] NewEvents of real Blob aggregates."""
    from domain.base import EventCodec
    from domain.blob import Blob

    codec = EventCodec([Blob])
    pairs = []
    for i in range((count + 1) // 2):
        blob = Blob.create(owner_id, book_data(i), schema_id, None, [bucket_id])
        created = codec.encode(blob.collect_events()[0], actor=owner_id)
        blob.update({**book_data(i), "pages": 7})
        updated = codec.encode(blob.collect_events()[0], actor=owner_id)
        pairs.append([blob.id_str, created, updated])
    return pairs


async def append_all(store: Any, pairs: list[list[Any]], writers: int) -> tuple[float, int]:
    """Append every pair (Created at 0, Updated at its position) with ``writers`` tasks; (seconds, events)."""
    queue = iter(pairs)

    async def writer() -> int:
        n = 0
        for blob_id, created, updated in queue:
            pos = (await store.append("blob", blob_id, created, 0, uuid.uuid4().hex)).position
            await store.append("blob", blob_id, updated, pos, uuid.uuid4().hex)
            n += 2
        return n

    t = time.perf_counter()
    counts = await asyncio.gather(*(writer() for _ in range(writers)))
    return time.perf_counter() - t, sum(counts)


async def project_log(store: Any, codec: Any, projection: Any, last: int) -> tuple[float, list[Any]]:
    """Read the log as a rebuild does and run the pure projection, no PostgreSQL: (seconds, changes per event)."""
    from adapters.collection import collecting_rarely

    t = time.perf_counter()
    per_event = []
    with collecting_rarely():  # as a rebuild reads
        async for batch in store.read_span(1, last):
            for record in batch:
                per_event.append(projection.changes(codec.upcast(record)))
    return time.perf_counter() - t, per_event


async def rowwise_rebuild(dsn: str, store: Any, codec: Any, projection: Any, last: int) -> float:
    """The rebuild before COPY (the "before" of issue 15): one ``read_all`` iterator, each batch of
    2,000 events applied change by change (``executemany`` runs) in a transaction, into scratch
    copies of the tables. Seconds."""
    from adapters.postgres.changes import apply_changes
    from adapters.postgres.pool import connect

    suffix = "__rowwise"
    conn = await connect(dsn)
    try:
        for table in projection.tables:
            await conn.execute(f'DROP TABLE IF EXISTS "{table}{suffix}"')
            await conn.execute(f'CREATE TABLE "{table}{suffix}" (LIKE "{table}" INCLUDING ALL)')
        t = time.perf_counter()
        batch: list[Any] = []

        async def flush() -> None:
            changes = [c for record in batch for c in projection.changes(codec.upcast(record))]
            async with conn.transaction():
                await apply_changes(conn, changes, suffix)
            batch.clear()

        stream = store.read_all(1)
        try:
            async for record in stream:
                batch.append(record)
                if len(batch) >= BATCH:
                    await flush()
                if record.position >= last:
                    break
        finally:
            await stream.aclose()
        await flush()
        elapsed = time.perf_counter() - t
        for table in projection.tables:
            await conn.execute(f'DROP TABLE "{table}{suffix}"')
        return elapsed
    finally:
        await conn.close()


def rows_of(per_event: list[Any]) -> list[tuple[str, dict[str, Any]]]:
    """Each event's resulting rows: a Created's blob row and memberships, an Updated's whole new blob row."""
    from projections.changes import Update, Upsert

    current: dict[str, dict[str, Any]] = {}
    rows: list[tuple[str, dict[str, Any]]] = []
    for changes in per_event:
        for change in changes:
            if isinstance(change, Upsert):
                if change.table == "blobs":
                    current[change.row["id"]] = dict(change.row)
                rows.append((change.table, dict(change.row)))
            elif isinstance(change, Update) and change.table == "blobs":
                row = {**current[change.where["id"]], **change.fields}
                current[row["id"]] = row
                rows.append(("blobs", row))
    return rows


async def asyncpg_upserts(dsn: str, rows: list[tuple[str, dict[str, Any]]]) -> float:
    """The same rows, ``executemany`` upserts, BATCH rows per transaction, into scratch copies."""
    from adapters.postgres.pool import connect

    conn = await connect(dsn)
    try:
        for table in ("blobs", "blob_buckets"):
            await conn.execute(f'DROP TABLE IF EXISTS "bench_{table}"')
            await conn.execute(f'CREATE TABLE "bench_{table}" (LIKE "{table}" INCLUDING ALL)')
        keys = {"blobs": ("id",), "blob_buckets": ("blob_id", "bucket_id")}
        t = time.perf_counter()
        for i in range(0, len(rows), BATCH):
            chunk = rows[i : i + BATCH]
            groups: dict[tuple[str, tuple[str, ...]], list[tuple[Any, ...]]] = {}
            order: list[tuple[str, tuple[str, ...]]] = []
            for table, row in chunk:
                shape = (table, tuple(row))
                if shape not in groups:
                    groups[shape] = []
                    order.append(shape)
                groups[shape].append(tuple(row.values()))
            async with conn.transaction():
                # blobs before memberships; within a table rows keep their order
                for table, cols in order:
                    key = keys[table]
                    sets = ", ".join(f'"{c}" = EXCLUDED."{c}"' for c in cols if c not in key)
                    sql = (
                        f'INSERT INTO "bench_{table}" ({", ".join(chr(34) + c + chr(34) for c in cols)}) '
                        f'VALUES ({", ".join(f"${j}" for j in range(1, len(cols) + 1))}) '
                        f'ON CONFLICT ({", ".join(key)}) DO UPDATE SET {sets}'
                    )
                    await conn.executemany(sql, groups[(table, cols)])
        elapsed = time.perf_counter() - t
        for table in ("blobs", "blob_buckets"):
            await conn.execute(f'DROP TABLE "bench_{table}"')
        return elapsed
    finally:
        await conn.close()


def eventsourcing_env(dsn: str) -> dict[str, str]:
    """The ``eventsourcing`` library's own PostgreSQL persistence on the database at ``dsn`` (the peer)."""
    parts = urlsplit(dsn)
    return {
        "PERSISTENCE_MODULE": "eventsourcing.postgres",
        "POSTGRES_DBNAME": unquote(parts.path.lstrip("/")),
        "POSTGRES_HOST": parts.hostname or "127.0.0.1",
        "POSTGRES_PORT": str(parts.port or 5432),
        "POSTGRES_USER": unquote(parts.username or "postgres"),
        "POSTGRES_PASSWORD": unquote(parts.password or ""),
        "CREATE_TABLE": "y",
    }


def eventsourcing_saves(dsn: str, pairs: list[list[Any]], threads: int) -> dict[str, float]:
    """The eventsourcing library's PostgreSQL persistence: Application.save, one aggregate (one event) per save."""
    from eventsourcing.application import Application

    from domain.blob import Blob

    env = {**eventsourcing_env(dsn), "POSTGRES_POOL_SIZE": str(threads), "POSTGRES_MAX_OVERFLOW": "0"}

    class BenchBlobs(Application):
        pass

    app = BenchBlobs(env=env)
    latencies: list[float] = []

    def one(pair: list[Any]) -> None:
        _, created, updated = pair
        blob = Blob.create(created.data["owner_id"], created.data["data"], created.data["schema_id"], None,
                           created.data["bucket_ids"])  # fmt: skip
        t = time.perf_counter()
        app.save(blob)
        latencies.append(time.perf_counter() - t)
        blob.update(updated.data["data"])
        t = time.perf_counter()
        app.save(blob)
        latencies.append(time.perf_counter() - t)

    try:
        one(pairs[0])  # warm: pool, table
        t = time.perf_counter()
        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(one, pairs[1:]))
        elapsed = time.perf_counter() - t
    finally:
        app.close()
    saves = 2 * (len(pairs) - 1)
    return {"rps": saves / elapsed, "p50_ms": percentile(latencies[2:], 50) * 1000,
            "p99_ms": percentile(latencies[2:], 99) * 1000, "count": saves}  # fmt: skip


# --------------------------------------------------------------------------- the bench


async def scenario_http(system: Any, duration: float, warmup: float, samples: int, dsn: str,
                        res: dict[str, Any]) -> tuple[str, str, str]:
    """(a) POST /v1/blobs typed and untyped under load, then (c) read-your-writes; answers (user, schema, bucket)."""
    async with aiohttp.ClientSession(base_url=system.base_url) as http:
        body = {"email": f"me{uuid.uuid4().hex}@bench.example.com", "password": PASSWORD, "username": "me"}
        async with http.post("/v1/auth/register", json=body) as r:
            reg = await r.json()
            assert r.status == 201, reg
        user_id, auth = reg["user_id"], {"Authorization": f"Bearer {reg['token']}"}
        schema = {"name": "book", "version": "1.0.0", "schema": BOOK_SCHEMA}
        async with http.post("/v1/schemas", json=schema, headers=auth) as r:
            assert r.status == 201, await r.text()
            schema_id = (await r.json())["id"]
        async with http.post("/v1/buckets", json={"name": "shelf", "type": "collection"}, headers=auth) as r:
            assert r.status == 201, await r.text()
            bucket_id = (await r.json())["id"]
        typed = {"schema_id": schema_id, "bucket_ids": [bucket_id]}

        def spec(body: dict[str, Any]) -> dict[str, Any]:
            return {"url": f"{system.base_url}/v1/blobs", "headers": auth, "body": body,
                    "concurrency": CONCURRENCY, "warmup": warmup, "duration": duration}  # fmt: skip

        print("  (a) POST /v1/blobs ...", flush=True)
        res["typed"] = await drive(spec(typed))
        res["untyped"] = await drive(spec({}))
        # let the projectors drain the load before timing single requests
        await system.running.watch.wait(await system.services.store.last_position(), ["blobs"], 30)
        print("  (c) read-your-writes ...", flush=True)
        res["ryw"] = await read_your_writes(http, auth, typed, dsn, samples)
    return user_id, schema_id, bucket_id


async def scenario_catch_up(store: Any, codec: Any, dsn: str, n_events: int, ids: tuple[str, str, str],
                            res: dict[str, Any]) -> list[list[Any]]:
    """(b) append the backlog (setup), rebuild() the blobs projection from 0, and the asyncpg baseline."""
    from adapters.postgres.rebuild import rebuild
    from projections.blobs import BlobProjection

    print(f"  (b) appending {n_events:,} blob events (setup) ...", flush=True)
    pairs = blob_events(n_events, *ids)
    res["append_s"], res["appended"] = await append_all(store, pairs, CONCURRENCY)
    last = await store.last_position()
    print(f"  (b) rebuild() of blobs from 0 ({last:,} events in the log) ...", flush=True)
    t = time.perf_counter()
    reached = await rebuild(BlobProjection(), dsn=dsn, store=store, codec=codec)
    res["rebuild_s"], res["log_events"] = time.perf_counter() - t, reached
    conn = await asyncpg.connect(dsn)
    try:
        res["blob_rows"] = await conn.fetchval("SELECT count(*) FROM blobs")
    finally:
        await conn.close()
    print("  (b) before: the row-by-row rebuild ...", flush=True)
    res["rowwise_s"] = await rowwise_rebuild(dsn, store, codec, BlobProjection(), reached)
    res["project_s"], per_event = await project_log(store, codec, BlobProjection(), reached)
    rows = rows_of(per_event)
    res["rows"] = len(rows)
    print(f"  (b) baseline: asyncpg executemany of {len(rows):,} rows ...", flush=True)
    res["asyncpg_s"] = await asyncpg_upserts(dsn, rows)
    return pairs


async def scenario_peer(dsn: str, pairs: list[list[Any]], n_es: int, res: dict[str, Any]) -> None:
    """The peer: the eventsourcing library saving the same Blob events to its own PostgreSQL persistence."""
    print(f"  (b) baseline: eventsourcing Application.save x {2 * (n_es // 2):,} ...", flush=True)
    res["es"] = await asyncio.to_thread(eventsourcing_saves, dsn, pairs[: n_es // 2 + 1], CONCURRENCY)


async def run(quick: bool = False, shared_pg: bool = False) -> list[dict[str, Any]]:
    import nats

    from adapters.jetstream.event_store import JetStreamEventStore
    from adapters.runtime.bootstrap import aggregates
    from adapters.telemetry.logging import configure_logging
    from domain.base import EventCodec
    from tests.support.system import start_system

    configure_logging(level="error")
    n_events = 10_000 if quick else 100_000
    n_es = 2_000 if quick else 6_000
    duration, warmup = (2.0, 0.5) if quick else (4.0, 1.0)
    samples = 50 if quick else 200
    started = time.perf_counter()
    overrides = {
        "rate_limit_per_second": 1e9, "rate_limit_burst": 10**9,
        "anonymous_rate_limit_per_second": 1e9, "anonymous_rate_limit_burst": 10**9, "sign_in_rate_per_second": 1e9, "sign_in_burst": 10**9,
        "write_bytes_per_second": 1e12, "write_bytes_burst": 10**12,
        "log_level": "error",
    }  # fmt: skip
    res: dict[str, Any] = {}

    async with own_nats() as nats_server, database(shared_pg) as (dsn, pg_desc):
        assert nats_server.url
        print(f"bench.content: PostgreSQL = {pg_desc}", flush=True)
        system = await start_system(nats_server.url, dsn, **overrides)
        try:
            ids = await scenario_http(system, duration, warmup, samples, dsn, res)
        finally:
            await system.stop()
        nc = await nats.connect(nats_server.url)
        try:
            store = JetStreamEventStore(nc, publish_timeout=30.0)
            pairs = await scenario_catch_up(store, EventCodec(aggregates()), dsn, n_events, ids, res)
            await scenario_peer(dsn, pairs, n_es, res)
        finally:
            await nc.drain()
    return report(res, quick, duration, warmup, samples, pg_desc, started)


def report(res: dict[str, Any], quick: bool, duration: float, warmup: float, samples: int, pg_desc: str,
           started: float) -> list[dict[str, Any]]:
    """The table, side by side with the baselines, and bench/results/content.json."""
    es, ryw = res["es"], res["ryw"]
    append_rate = res["appended"] / res["append_s"]
    rebuild_rate = res["log_events"] / res["rebuild_s"]
    asyncpg_rate = res["log_events"] / res["asyncpg_s"]  # the same events' rows, per event
    es_label = f"eventsourcing.postgres save, 1 event/save, {CONCURRENCY} threads"

    def ms(values: list[float], p: float) -> float:
        return round(percentile(values, p), 2)

    def row(case: str, value: float, unit: str, p50: float | None, p99: float | None,
            base_case: str | None = None, base: float | None = None, bp50: float | None = None,
            bp99: float | None = None, ratio: float | None = None, **extra: Any) -> dict[str, Any]:  # fmt: skip
        if ratio is None and base:
            ratio = round(value / base, 3)
        return {"case": case, "value": round(value, 1), "unit": unit, "p50_ms": p50, "p99_ms": p99,
                "baseline_case": base_case, "baseline": None if base is None else round(base, 1),
                "base_p50_ms": bp50, "base_p99_ms": bp99, "ratio": ratio, **extra}  # fmt: skip

    t_, u_ = res["typed"], res["untyped"]
    settled = statistics.median(ryw["get_settled"])
    rows_out = [
        row(f"POST /v1/blobs, schema-validated, in a bucket, {CONCURRENCY} clients", t_["rps"], "cmds/s",
            round(t_["p50_ms"], 2), round(t_["p99_ms"], 2), es_label, es["rps"], round(es["p50_ms"], 2),
            round(es["p99_ms"], 2), statuses=t_["statuses"], cpu_us=t_.get("cpu_us")),
        row(f"POST /v1/blobs, untyped, no bucket, {CONCURRENCY} clients", u_["rps"], "cmds/s",
            round(u_["p50_ms"], 2), round(u_["p99_ms"], 2), es_label, es["rps"], round(es["p50_ms"], 2),
            round(es["p99_ms"], 2), statuses=u_["statuses"], cpu_us=u_.get("cpu_us")),
        row(f"store.append Blob events, {CONCURRENCY} writers (setup of b)", append_rate, "events/s", None, None,
            es_label, es["rps"], round(es["p50_ms"], 2), round(es["p99_ms"], 2), events=res["appended"]),
        row(f"rebuild() blobs from position 0, {res['log_events']:,} events", rebuild_rate, "events/s", None, None,
            f"asyncpg executemany of the same {res['rows']:,} rows, {BATCH}/tx", asyncpg_rate, rows=res["rows"],
            asyncpg_rows_per_s=round(res["rows"] / res["asyncpg_s"], 1), blob_rows=res["blob_rows"]),
        row("  of which: read log + pure projection (no PostgreSQL)", res["log_events"] / res["project_s"],
            "events/s", None, None, "the same asyncpg executemany", asyncpg_rate),
        row("  before: rebuild row by row (executemany runs, 2000 events/tx)", res["log_events"] / res["rowwise_s"],
            "events/s", None, None, "the same asyncpg executemany", asyncpg_rate),
        row("RYW: default GET after the POST answer", ms(ryw["get_default"], 50), "ms p50", ms(ryw["get_default"], 50),
            ms(ryw["get_default"], 99), "the same GET, nothing pending", settled, ms(ryw["get_settled"], 50),
            ms(ryw["get_settled"], 99)),
        row("RYW: poll ?consistency=eventual until 200", ms(ryw["eventual_poll"], 50), "ms p50",
            ms(ryw["eventual_poll"], 50), ms(ryw["eventual_poll"], 99), "the same GET, nothing pending", settled,
            ms(ryw["get_settled"], 50), ms(ryw["get_settled"], 99), mean_polls=round(statistics.mean(ryw["polls"]), 2)),
        row("RYW: projector NOTIFY after the answer (<0: before)", ms(ryw["notify"], 50), "ms p50",
            ms(ryw["notify"], 50), ms(ryw["notify"], 99)),
    ]  # fmt: skip
    meta = {
        "quick": quick,
        "seconds": round(time.perf_counter() - started, 1),
        "concurrency": CONCURRENCY,
        "duration_s": duration,
        "warmup_s": warmup,
        "ryw_samples": samples,
        "catch_up_events_appended": res["appended"],
        "eventsourcing_saves": es["count"],
        "nats": "own EmbeddedNats (sync_interval: always)",
        "postgres": pg_desc,
        "load": "(a) separate process, one aiohttp ClientSession, 50 clients of one user; (c) one client in-process",
        "ratios": {
            "create_blob_vs_eventsourcing_save": round(t_["rps"] / es["rps"], 3),
            "store_append_vs_eventsourcing_save": round(append_rate / es["rps"], 3),
            "rebuild_vs_asyncpg_executemany": round(rebuild_rate / asyncpg_rate, 3),
            "rebuild_vs_rowwise_rebuild": round(res["rowwise_s"] / res["rebuild_s"], 3),
        },
        "loadavg_after": [round(x, 2) for x in os.getloadavg()],
    }
    print_table(
        f"bench.content — {'quick, ' if quick else ''}{CONCURRENCY} clients x {duration:g} s; "
        f"catch-up {res['appended']:,} events; PostgreSQL: {pg_desc}",
        rows_out,
        [("case", "inkstream"), ("value", "value"), ("unit", "unit"), ("p50_ms", "p50 ms"), ("p99_ms", "p99 ms"),
         ("baseline_case", "baseline is"), ("baseline", "base"), ("base_p50_ms", "base p50"),
         ("base_p99_ms", "base p99"), ("ratio", "ours/base"), ("cpu_us", "app CPU us/cmd")],
    )  # fmt: skip
    print("app CPU us/cmd: the app's CPU (it runs in this process, with its projectors) per request while the "
          "load ran")
    print("ratios: " + ", ".join(f"{k} {v}" for k, v in meta["ratios"].items()))
    path = write_results(NAME, rows_out, meta)
    print(f"({meta['seconds']} s; rows in {path})")
    return rows_out


def main(argv: list[str] | None = None) -> None:
    bench_main("bench.content", __doc__, "10k catch-up events, shorter load runs", run, _worker, argv)


if __name__ == "__main__":
    main()
