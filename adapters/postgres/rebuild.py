"""Blue/green rebuild of a projection's tables from the log.

Replays every event into fresh ``<table>__rebuild`` copies while the live
tables keep answering, then, in one transaction holding the projection's swap
lock (which waits for the live runner's batch in flight and holds off the
next), brings the copies up to the live checkpoint and renames them into place.
"""

from __future__ import annotations

from collections.abc import Callable

import asyncpg

from adapters.postgres.changes import apply_changes
from adapters.postgres.pool import connect
from adapters.postgres.projector import swap_lock_key
from commands.ports import EventStore
from domain.base import EventCodec
from domain.recorded import Recorded
from projections.changes import Projection

SUFFIX = "__rebuild"

Progress = Callable[[int, int], None]  # (position reached, target position)


async def _prepare(conn: asyncpg.Connection, tables: tuple[str, ...]) -> None:
    for table in tables:
        await conn.execute(f'DROP TABLE IF EXISTS "{table}{SUFFIX}"')
        await conn.execute(f'CREATE TABLE "{table}{SUFFIX}" (LIKE "{table}" INCLUDING ALL)')


async def _replay(
    conn: asyncpg.Connection,
    projection: Projection,
    store: EventStore,
    codec: EventCodec,
    start: int,
    end: int,
    progress: Progress | None,
    batch_size: int = 2000,
) -> None:
    if end < start:
        return
    batch: list[Recorded] = []

    async def flush() -> None:
        changes = [c for record in batch for c in projection.changes(codec.upcast(record))]
        async with conn.transaction():
            await apply_changes(conn, changes, SUFFIX)
        if progress and batch:
            progress(batch[-1].position, end)
        batch.clear()

    stream = store.read_all(start)
    try:
        async for record in stream:
            if record.position > end:
                break
            batch.append(record)
            if len(batch) >= batch_size:
                await flush()
            if record.position >= end:
                break
    finally:
        await stream.aclose()
    await flush()


async def rebuild(
    projection: Projection,
    *,
    dsn: str,
    store: EventStore,
    codec: EventCodec,
    progress: Progress | None = None,
) -> int:
    """Rebuild and swap in; returns the position the swapped tables reflect."""
    conn = await connect(dsn)
    try:
        await conn.execute(
            "INSERT INTO projection_checkpoints (name) VALUES ($1) ON CONFLICT (name) DO NOTHING", projection.name
        )
        await _prepare(conn, projection.tables)
        target = await store.last_position()
        await _replay(conn, projection, store, codec, 1, target, progress)
        async with conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", swap_lock_key(projection.name))
            live = int(await conn.fetchval(
                "SELECT position FROM projection_checkpoints WHERE name = $1 FOR UPDATE", projection.name
            ))
            if live > target:
                await _replay(conn, projection, store, codec, target + 1, live, progress)
            reached = max(live, target)
            for table in projection.tables:
                await conn.execute(f'ALTER TABLE "{table}" RENAME TO "{table}__old"')
                await conn.execute(f'ALTER TABLE "{table}{SUFFIX}" RENAME TO "{table}"')
                await conn.execute(f'DROP TABLE "{table}__old"')
            await conn.execute(
                "UPDATE projection_checkpoints SET position = $2, updated_at = now() WHERE name = $1",
                projection.name,
                reached,
            )
            await conn.execute("SELECT pg_notify('ink_projection', $1)", f"{projection.name}:{reached}")
        return reached
    finally:
        await conn.close()
