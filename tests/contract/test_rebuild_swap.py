"""A replay swaps its fresh tables in while queries run: a query reading two of a
projection's tables (blobs with their memberships) must never be the victim of a
deadlock with the swap renaming them."""

from __future__ import annotations

import asyncio

from adapters.postgres.pool import connect
from adapters.postgres.rebuild import rebuild
from domain.base import EventCodec
from tests.contract.test_rebuild_copy import projection_named, studio_log


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
