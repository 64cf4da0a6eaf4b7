"""A replay swaps its fresh tables in while queries run: a query reading two of a
projection's tables (blobs with their memberships) must never be the victim of a
deadlock with the swap renaming them; and a schema migration that changed a live
table meanwhile must not be undone by the swap."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import pytest

from adapters.postgres import rebuild as rebuild_module
from adapters.postgres.pool import connect
from adapters.postgres.rebuild import ReadModelChanged, rebuild, rebuild_all
from domain.base import EventCodec
from tests.contract.test_rebuild_copy import dump, indexes, projection_named, studio_log


async def test_a_swap_gives_way_to_a_query_holding_one_of_its_tables(blank: str) -> None:
    store = await studio_log(4, 300)
    blobs = projection_named("blobs")
    reader = await connect(blank)
    try:
        tx = reader.transaction()
        await tx.start()
        await reader.fetch("SELECT * FROM blob_buckets")  # holds blob_buckets until it commits
        swap = asyncio.create_task(rebuild(blobs, dsn=blank, store=store, codec=EventCodec([])))
        await asyncio.sleep(1.5)  # the rebuild is done and waits to swap
        assert not swap.done()
        rows = await reader.fetch("SELECT * FROM blobs")  # the other table, as a join would read it next
        await tx.commit()
        reached = await asyncio.wait_for(swap, 30)
        assert reached == len(store.records)
        assert rows == []  # the live tables were empty; the swap came after this read
        assert await reader.fetchval("SELECT count(*) FROM blobs") > 0
    finally:
        await reader.close()


@pytest.mark.parametrize("migration", [
    "CREATE INDEX blobs_by_schema_and_owner ON blobs (schema_id, owner_id)",
    "ALTER TABLE blob_buckets ADD COLUMN added_by text",
])
async def test_a_schema_migration_during_the_rebuild_is_not_undone_by_the_swap(
    blank: str, migration: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A newer version's schema migration may run while a long replay fills its copies (taken
    from the live tables before it): swapping them in would silently drop what it added."""
    store = await studio_log(6, 300)
    blobs, books = projection_named("blobs"), projection_named("books")
    conn = await connect(blank)
    fill = rebuild_module._replay_into_fresh

    async def fill_then_migrate(*args: Any, **kwargs: Any) -> None:
        await fill(*args, **kwargs)
        await conn.execute(migration)  # after the copies were taken, before the swap

    try:
        before = await dump(conn)
        monkeypatch.setattr(rebuild_module, "_replay_into_fresh", fill_then_migrate)
        with pytest.raises(ReadModelChanged) as refused:
            await rebuild_all([blobs, books], dsn=blank, store=store, codec=EventCodec([]))
        assert refused.value.projections == ("blobs",)
        after = await dump(conn)
        assert {t: after[t] for t in blobs.tables} == {t: before[t] for t in blobs.tables} == {"blobs": [], "blob_buckets": []}
        assert after["books"], "the projection whose tables did not change was swapped in"
        assert await checkpoint(conn, "blobs") == 0 and await checkpoint(conn, "books") == len(store.records)
        migrated = await indexes_and_columns(conn)
        assert not await conn.fetch("SELECT relname FROM pg_class WHERE relname LIKE '%\\_\\_rebuild%'")

        monkeypatch.setattr(rebuild_module, "_replay_into_fresh", fill)
        assert await rebuild(blobs, dsn=blank, store=store, codec=EventCodec([])) == len(store.records)
        assert await conn.fetchval("SELECT count(*) FROM blobs") > 0
        assert await indexes_and_columns(conn) == migrated, "a second replay copies the migrated tables"
    finally:
        await conn.close()


async def checkpoint(conn: asyncpg.Connection, name: str) -> int:
    return int(await conn.fetchval("SELECT position FROM projection_checkpoints WHERE name = $1", name) or 0)


async def indexes_and_columns(conn: asyncpg.Connection) -> tuple[Any, ...]:
    named = await indexes(conn)
    columns = await conn.fetch(
        "SELECT table_name, column_name, data_type FROM information_schema.columns"
        " WHERE table_name IN ('blobs', 'blob_buckets') ORDER BY 1, 2")
    return named["blobs"], named["blob_buckets"], [tuple(r.values()) for r in columns]
