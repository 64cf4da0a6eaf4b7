"""Read stores: catch-up of every projection into PostgreSQL and into MongoDB, beside each driver's raw inserts.

    python -m bench.read_stores [--quick] [--shared-pg]

Starts its own nats-server (EmbeddedNats, ``sync_interval: always``) and its
own PostgreSQL (EmbeddedPostgres, fsync on; ``--shared-pg``: a throwaway
database on 127.0.0.1:5432). MongoDB is the server at
``INKSTREAM_BENCH_MONGO_URL`` when set, else a SecantusDB started here (a
Mongo-wire-compatible server written in Python, the test suite's stand-in: its
figures say what inkstream's Mongo store costs over that server, not how fast
MongoDB is).

Setup (reported, not the point): a mixed studio log appended by 50 writers —
buckets, blobs created in them, updated and moved, books created with chapters,
a chapter added and one edited, a blob deleted now and then.

(a) catch-up: the product's ``ProjectorRunner`` for each of the five
    projections, all at once as a process runs them, into a fresh store, from
    position 0 until every one reached the log's end: log events/s. PostgreSQL
    first, then MongoDB, so they never compete.
    Attribution: the same runners into a store that keeps nothing (reading the
    log, one cursor per projection while it is behind, and the pure projections).
(c) replay: ``rebuild_all`` (what ``inkstream replay`` runs) of every projection
    from position 0 into fresh PostgreSQL tables: one reader, COPY.
(b) baseline, same run: each store's driver inserting as many plain documents
    (the blob rows of the log, ~350 bytes of JSON) as the catch-up made writes,
    500 per transaction (asyncpg ``executemany`` INSERT into a jsonb table;
    pymongo ``insert_many``, in a transaction where the server offers them).
    Shown as rows/s and as the events/s that rate would allow for the same
    log (writes ÷ events per event), which (a) is compared to.

Rows go to bench/results/read_stores.json.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg

from bench.common import bench_main
from bench.event_store import own_nats, print_table, write_results
from bench.http import database

NAME = "read_stores"
WRITERS = 50
BATCH = 500


def studio_log(n_events: int) -> list[tuple[str, str, list[Any]]]:
    """[(aggregate type, id, [NewEvent, ...])] of real aggregates, about ``n_events`` events in all."""
    from adapters.runtime.bootstrap import aggregates
    from domain.base import EventCodec
    from domain.blob import Blob
    from domain.book import Book
    from domain.bucket import Bucket
    from domain.ids import new_id

    codec = EventCodec(aggregates())
    owner = new_id()
    out: list[tuple[str, str, list[Any]]] = []
    count = 0

    def take(aggregate: Any) -> None:
        nonlocal count
        events = [codec.encode(e, actor=owner) for e in aggregate.collect_events()]
        out.append((type(aggregate).TYPE, aggregate.id_str, events))
        count += len(events)

    buckets: list[str] = []
    i = 0
    while count < n_events:
        if i % 40 == 0:
            bucket = Bucket.create(owner, f"shelf {i}", "shelf", None)
            buckets.append(bucket.id_str)
            take(bucket)
        if i % 10 == 5:
            book = Book.create(owner, f"Book {i}", {"genre": "bench", "n": i},
                               [{"title": f"Chapter {n}", "content": "words " * 200} for n in range(3)])
            book.add_chapter("Epilogue", "the end " * 100)
            book.edit_chapter(book.chapter_ids[0], content="rewritten " * 150)
            take(book)
        else:
            data = {"title": f"note {i}", "tags": ["bench", str(i % 7)], "body": "text " * 40, "n": i}
            blob = Blob.create(owner, data, None, None, [buckets[-1]])
            blob.update({**data, "edited": True})
            if i % 5 == 0 and len(buckets) > 1:
                blob.move(buckets[-1], buckets[-2])
            if i % 17 == 0:
                blob.delete()
            take(blob)
        i += 1
    return out


async def append_log(store: Any, log: list[tuple[str, str, list[Any]]]) -> tuple[float, int]:
    queue = iter(log)

    async def writer() -> int:
        n = 0
        for kind, aggregate_id, events in queue:
            position = 0
            for event in events:
                position = (await store.append(kind, aggregate_id, event, position, uuid.uuid4().hex)).position
                n += 1
        return n

    started = time.perf_counter()
    counts = await asyncio.gather(*(writer() for _ in range(WRITERS)))
    return time.perf_counter() - started, sum(counts)


async def count_writes(store: Any, codec: Any, last: int) -> int:
    """How many changes the projections make of the log (what the baselines insert)."""
    from adapters.runtime.bootstrap import projections

    chosen = projections()
    writes = 0
    stream = store.read_all(1)
    try:
        async for record in stream:
            writes += sum(len(p.changes(codec.upcast(record))) for p in chosen)
            if record.position >= last:
                break
    finally:
        await stream.aclose()
    return writes


async def catch_up(target: Any, store: Any, codec: Any, last: int) -> float:
    """Seconds until every projection's runner reached ``last`` from position 0."""
    from adapters.projector import ProjectorRunner
    from adapters.runtime.bootstrap import projections

    runners = [ProjectorRunner(p, target, store=store, codec=codec) for p in projections()]
    started = time.perf_counter()
    tasks = [asyncio.create_task(r.run()) for r in runners]
    try:
        while min(r.state.position for r in runners) < last:
            if any(t.done() for t in tasks):
                raise RuntimeError(f"a runner stopped: {[(r.name, r.state) for r in runners]}")
            await asyncio.sleep(0.01)
        return time.perf_counter() - started
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


class NoStore:
    """A ``ProjectionStore`` that keeps nothing: what catch-up costs before any store is written."""

    kind = "none"

    def __init__(self) -> None:
        self.checkpoints: dict[str, int] = {}

    def is_outage(self, exc: BaseException) -> bool:
        return False

    @contextlib.asynccontextmanager
    async def writer(self, projection: Any) -> AsyncIterator[Any]:
        store = self

        class Writer:
            async def lead(self) -> bool:
                return True

            async def start(self) -> int:
                return 0

            async def commit(self, events: list[Any], before_checkpoint: Any) -> Any:
                from adapters.projector import Committed

                store.checkpoints[projection.name] = events[-1].position
                return Committed(events[-1].position, [e.record for e in events])

            async def advance(self, events: list[Any]) -> Any:
                from adapters.projector import Committed

                store.checkpoints[projection.name] = events[-1].position
                return Committed(events[-1].position)

            async def halt(self, position: int, error: str) -> None:
                raise RuntimeError(error)

            async def idle(self) -> None:
                pass

        yield Writer()


def _names() -> list[str]:
    from adapters.runtime.bootstrap import projections

    return [p.name for p in projections()]


def raw_document(i: int) -> dict[str, Any]:
    return {"id": f"doc-{i:09d}", "owner_id": "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b",
            "data": {"title": f"note {i}", "tags": ["bench", str(i % 7)], "body": "text " * 40, "n": i},
            "bucket_ids": ["0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5c"], "version": 2, "position": i}


async def asyncpg_inserts(dsn: str, n: int) -> float:
    from adapters.postgres.pool import connect

    conn = await connect(dsn)
    try:
        await conn.execute("CREATE TABLE bench_raw (id text PRIMARY KEY, doc jsonb NOT NULL)")
        started = time.perf_counter()
        for first in range(0, n, BATCH):
            rows = [(d["id"], d) for d in map(raw_document, range(first, min(first + BATCH, n)))]
            async with conn.transaction():
                await conn.executemany("INSERT INTO bench_raw (id, doc) VALUES ($1, $2)", rows)
        return time.perf_counter() - started
    finally:
        await conn.close()


async def pymongo_inserts(mongo: Any, n: int) -> float:
    collection = mongo.db.bench_raw
    started = time.perf_counter()
    for first in range(0, n, BATCH):
        docs = [{"_id": d["id"], **d} for d in map(raw_document, range(first, min(first + BATCH, n)))]
        if mongo.transactions:
            async with mongo.client.start_session() as session:
                async with await session.start_transaction():
                    await collection.insert_many(docs, session=session)
        else:
            await collection.insert_many(docs)
    return time.perf_counter() - started


@contextlib.asynccontextmanager
async def mongo_server() -> AsyncIterator[tuple[str, str]]:
    """(url of a fresh database, description)."""
    from tests.support.mongo import MongoServer, new_database_name, with_database

    external = os.environ.get("INKSTREAM_BENCH_MONGO_URL", "")
    name = new_database_name("ink_bench")
    if external:
        yield with_database(external, name), "MongoDB at INKSTREAM_BENCH_MONGO_URL"
        return
    server = MongoServer(external="")
    await server.start()
    try:
        yield server.database_url(name), "own SecantusDB 0.7.0b3 (Python, in memory) — a stand-in, not MongoDB"
    finally:
        await server.stop()


async def run(quick: bool = False, shared_pg: bool = False) -> list[dict[str, Any]]:
    import nats

    from adapters.jetstream.event_store import JetStreamEventStore
    from adapters.jetstream.streams import apply_streams, load_stream_specs
    from adapters.mongo.client import open_mongo
    from adapters.mongo.collections import ensure_indexes
    from adapters.mongo.projector import MongoProjectionStore
    from adapters.postgres.migrations import migrate
    from adapters.postgres.pool import connect
    from adapters.postgres.projector import PostgresProjectionStore
    from adapters.runtime.bootstrap import aggregates, projections
    from adapters.telemetry.logging import configure_logging
    from domain.base import EventCodec

    configure_logging(level="error")
    n_events = 3_000 if quick else 20_000
    started = time.perf_counter()
    codec = EventCodec(aggregates())
    res: dict[str, Any] = {}
    async with own_nats() as nats_server, database(shared_pg) as (dsn, pg_desc), mongo_server() as (url, mongo_desc):
        assert nats_server.url
        print(f"bench.read_stores: PostgreSQL = {pg_desc}; MongoDB = {mongo_desc}", flush=True)
        nc = await nats.connect(nats_server.url)
        try:
            await apply_streams(nc, load_stream_specs())
            store = JetStreamEventStore(nc, publish_timeout=30.0)
            print(f"  appending a studio log of ~{n_events:,} events (setup) ...", flush=True)
            res["append_s"], res["events"] = await append_log(store, studio_log(n_events))
            last = await store.last_position()
            res["writes"] = await count_writes(store, codec, last)

            print("  attribution: the same runners into no store ...", flush=True)
            res["none_s"] = await catch_up(NoStore(), store, codec, last)
            conn = await connect(dsn)
            try:
                await migrate(conn)
            finally:
                await conn.close()
            print("  (a) catch-up into PostgreSQL ...", flush=True)
            res["pg_s"] = await catch_up(PostgresProjectionStore(dsn), store, codec, last)
            print("  (c) replay: rebuild_all of every projection from 0 ...", flush=True)
            from adapters.postgres.rebuild import rebuild_all

            t = time.perf_counter()
            await rebuild_all(projections(), dsn=dsn, store=store, codec=codec)
            res["rebuild_s"] = time.perf_counter() - t
            print(f"  (b) asyncpg: {res['writes']:,} plain inserts ...", flush=True)
            res["pg_raw_s"] = await asyncpg_inserts(dsn, res["writes"])

            mongo = await open_mongo(url)
            try:
                res["transactions"] = mongo.transactions
                await ensure_indexes(mongo.db, [t for p in projections() for t in p.tables])
                print("  (a) catch-up into MongoDB ...", flush=True)
                res["mongo_s"] = await catch_up(MongoProjectionStore(mongo), store, codec, last)
                print(f"  (b) pymongo: {res['writes']:,} plain inserts ...", flush=True)
                res["mongo_raw_s"] = await pymongo_inserts(mongo, res["writes"])
                await mongo.client.drop_database(mongo.db.name)
            finally:
                await mongo.close()
        finally:
            await nc.drain()
    return report(res, quick, pg_desc, mongo_desc, started)


def report(res: dict[str, Any], quick: bool, pg_desc: str, mongo_desc: str, started: float) -> list[dict[str, Any]]:
    events, writes = res["events"], res["writes"]
    rows: list[dict[str, Any]] = []
    for store, driver, ours_s, raw_s in (("PostgreSQL", "asyncpg executemany INSERT", res["pg_s"], res["pg_raw_s"]),
                                         ("MongoDB", "pymongo insert_many", res["mongo_s"], res["mongo_raw_s"])):
        ours, raw_rows = events / ours_s, writes / raw_s
        equivalent = events / raw_s  # the log's events/s at the driver's raw pace
        rows.append({"case": f"catch-up of all 5 projections into {store}, {events:,} events",
                     "value": round(ours, 1), "unit": "events/s",
                     "baseline_case": f"{driver}, {BATCH}/tx, {writes:,} docs", "baseline_rows": round(raw_rows, 1),
                     "baseline": round(equivalent, 1), "ratio": round(ours / equivalent, 3)})
    equivalent = events / res["pg_raw_s"]
    rows.append({"case": f"replay (rebuild_all, COPY) of all {len(_names())} projections into PostgreSQL from 0",
                 "value": round(events / res["rebuild_s"], 1), "unit": "events/s",
                 "baseline_case": "asyncpg executemany INSERT (as above)", "baseline_rows": round(writes / res["pg_raw_s"], 1),
                 "baseline": round(equivalent, 1), "ratio": round(events / res["rebuild_s"] / equivalent, 3)})
    rows.append({"case": "  of which: reading the log and projecting, into no store", "value": round(events / res["none_s"], 1),
                 "unit": "events/s", "baseline_case": None, "baseline_rows": None, "baseline": None, "ratio": None})
    meta = {
        "quick": quick,
        "seconds": round(time.perf_counter() - started, 1),
        "events": events,
        "writes": writes,
        "append_events_per_s": round(events / res["append_s"], 1),
        "postgres": pg_desc,
        "mongo": mongo_desc,
        "mongo_transactions": res["transactions"],
        "loadavg_after": [round(x, 2) for x in os.getloadavg()],
    }
    print_table(
        f"bench.read_stores — {'quick, ' if quick else ''}{events:,} events ({writes:,} writes); "
        f"PostgreSQL: {pg_desc}; MongoDB: {mongo_desc}",
        rows,
        [("case", "inkstream"), ("value", "value"), ("unit", "unit"), ("baseline_case", "baseline is"),
         ("baseline_rows", "base rows/s"), ("baseline", "base events/s"), ("ratio", "ours/base")],
    )
    path = write_results(NAME, rows, meta)
    print(f"({meta['seconds']} s; rows in {path})")
    return rows


def main(argv: list[str] | None = None) -> None:
    bench_main("bench.read_stores", __doc__, "~3k events instead of 20k", run, lambda spec: asyncio.sleep(0), argv)


if __name__ == "__main__":
    main()
