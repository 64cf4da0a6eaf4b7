"""Opening the read-model stores a process uses: PostgreSQL, MongoDB, or both.

Each store gives the same four things, so the rest of the runtime does not
care which it is: a ``ReadModel`` (queries), a watch of its projections'
positions (read-your-writes, ``/ready``), a ``ProjectionStore`` (what the
projector runners write through) and a ping (``/health``). Opening waits for
the server, prepares it (PostgreSQL migrations, MongoDB indexes) and pushes
every cleanup onto the process's exit stack.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Iterable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Literal

import asyncpg
import structlog

from adapters.mongo.client import Mongo, open_mongo
from adapters.mongo.collections import check_declared, ensure_indexes
from adapters.mongo.projector import MongoProjectionStore
from adapters.mongo.read_model import MongoReadModel
from adapters.mongo.watch import MongoWatch
from adapters.positions import PositionBoard
from adapters.postgres.migrations import migrate
from adapters.postgres.pool import OUTAGE_ERRORS, connect, create_pool
from adapters.postgres.projector import PostgresProjectionStore
from adapters.postgres.read_model import PostgresReadModel
from adapters.postgres.row_cache import RowCache
from adapters.postgres.watch import ProjectionWatch
from adapters.projector import ProjectionStore
from adapters.telemetry.redaction import without_password
from projections.changes import Projection
from projections.read_model import ReadModel

log = structlog.get_logger("inkstream.runtime")

StoreKind = Literal["postgres", "mongo"]
STORE_KINDS: tuple[StoreKind, ...] = ("postgres", "mongo")


@dataclass
class ReadStore:
    kind: StoreKind
    read_model: ReadModel
    watch: PositionBoard
    target: ProjectionStore
    ping: Callable[[], Awaitable[None]]
    pool: asyncpg.Pool | None = None
    mongo: Mongo | None = None


async def open_postgres(stack: AsyncExitStack, dsn: str, *, timeout: float, row_cache_bytes: int = 0) -> ReadStore:
    """``row_cache_bytes``: rows of single-row queries kept until a commit changes them (0: none)."""
    await _wait_for_postgres(dsn, timeout)
    conn = await connect(dsn)
    try:
        applied = await migrate(conn)
    finally:
        await conn.close()
    if applied:
        log.info("postgres.migrated", applied=applied)
    pool = await create_pool(dsn, min_size=1, max_size=20)
    stack.push_async_callback(_close_pool, pool)
    rows = RowCache(row_cache_bytes) if row_cache_bytes > 0 else None
    watch = ProjectionWatch(dsn, rows=rows)
    await watch.start()
    stack.push_async_callback(watch.stop)

    async def ping() -> None:
        async with pool.acquire() as c:
            await c.fetchval("SELECT 1")

    return ReadStore("postgres", PostgresReadModel(pool, rows), watch, PostgresProjectionStore(dsn), ping, pool=pool)


async def open_mongo_store(
    stack: AsyncExitStack, url: str, projections: Iterable[Projection], *, timeout: float
) -> ReadStore:
    projections = list(projections)
    check_declared(projections)
    mongo = await open_mongo(url, timeout=timeout)
    stack.push_async_callback(_close_mongo, mongo)
    await ensure_indexes(mongo.db, [t for p in projections for t in p.tables])
    log.info("mongo.ready", url=without_password(url), database=mongo.db.name, transactions=mongo.transactions)
    watch = MongoWatch(mongo)
    await watch.start()
    stack.push_async_callback(watch.stop)

    async def ping() -> None:
        await mongo.client.admin.command("ping")

    return ReadStore("mongo", MongoReadModel(mongo), watch, MongoProjectionStore(mongo), ping, mongo=mongo)


async def _close_pool(pool: asyncpg.Pool) -> None:
    with contextlib.suppress(Exception):
        async with asyncio.timeout(5):
            await pool.close()


async def _close_mongo(mongo: Mongo) -> None:
    with contextlib.suppress(Exception):
        async with asyncio.timeout(5):
            await mongo.close()


async def _wait_for_postgres(dsn: str, timeout: float) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        try:
            conn = await asyncpg.connect(dsn, timeout=2)
            await conn.close()
            return
        except (*OUTAGE_ERRORS, asyncpg.PostgresError) as exc:
            if asyncio.get_running_loop().time() > deadline:
                raise RuntimeError(
                    f"PostgreSQL at {without_password(dsn)} did not answer within {timeout:.0f} s: {exc}"
                ) from exc
            await asyncio.sleep(0.5)
