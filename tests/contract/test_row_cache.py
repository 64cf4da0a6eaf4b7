"""The row cache against a real PostgreSQL: what the projectors commit and what a rebuild swaps in
reaches every read through it, and nothing is served from it while its notices cannot be heard."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timezone

import pytest

from adapters.postgres.pool import connect, create_pool
from adapters.postgres.projector import NOTIFY_CHANNEL, PostgresProjectionStore, PostgresWriter
from adapters.postgres.read_model import PostgresReadModel
from adapters.postgres.rebuild import rebuild
from adapters.postgres.row_cache import RowCache
from adapters.postgres.watch import ProjectionWatch
from adapters.projector import Projected
from domain.base import EventCodec
from domain.ids import new_id
from domain.recorded import Recorded
from projections.users import UsersProjection
from tests.contract.test_rebuild_copy import projection_named, studio_log


@dataclass
class Reads:
    rows: RowCache
    watch: ProjectionWatch
    model: PostgresReadModel


@pytest.fixture
async def reads(blank: str) -> AsyncIterator[Reads]:
    """A process's reads as ``inkstream`` opens them: one pool, a positions watch, one row cache."""
    rows = RowCache(64 << 20)
    watch = ProjectionWatch(blank, rows=rows, reconnect_delay=0.1)
    pool = await create_pool(blank, min_size=1, max_size=2)
    await watch.start()
    try:
        yield Reads(rows, watch, PostgresReadModel(pool, rows))
    finally:
        await watch.stop()
        await pool.close()


def registered(position: int, user_id: str, username: str) -> Projected:
    record = Recorded(position, "User", new_id(), "User.Registered", 1, datetime.now(timezone.utc),
                      {"user_id": user_id, "email": f"{user_id}@example.com", "username": username})
    return Projected(record, UsersProjection().changes(record))


@asynccontextmanager
async def users_writer(dsn: str) -> AsyncIterator[PostgresWriter]:
    """The users projection's writer, leading and started, as a projector runner holds it."""
    async with PostgresProjectionStore(dsn).writer(UsersProjection()) as writer:
        assert await writer.lead()
        await writer.start()
        yield writer


async def test_a_committed_change_reaches_the_next_read_of_a_kept_row(blank: str, reads: Reads) -> None:
    user_id = new_id()
    async with users_writer(blank) as writer:
        await writer.commit([registered(1, user_id, "first")], None)
        await reads.watch.wait(1, ["users"], 5)
        assert (await reads.model.user(user_id)).username == "first"
        assert (await reads.model.user(user_id)).username == "first"
        assert reads.rows.hits == 1  # the second read asked PostgreSQL nothing
        await writer.commit([registered(2, user_id, "second")], None)  # an upsert of the same row
        await reads.watch.wait(2, ["users"], 5)  # what read-your-writes waits for
        assert (await reads.model.user(user_id)).username == "second"


async def test_a_rebuild_swap_replaces_every_kept_row(blank: str, reads: Reads) -> None:
    """A rebuild is how a projection's fix reaches rows it wrote wrongly: a row kept from before
    the swap must not outlive it."""
    store = await studio_log(5, 200)
    blobs = projection_named("blobs")
    await rebuild(blobs, dsn=blank, store=store, codec=EventCodec([]))
    conn = await connect(blank)
    try:
        blob_id = await conn.fetchval("SELECT id FROM blobs ORDER BY id LIMIT 1")
        right = (await reads.model.blob(blob_id)).data
        # a projection bug wrote this row wrongly; nothing announced it (no projector did)
        await conn.execute("""UPDATE blobs SET data = '"wrong"' WHERE id = $1""", blob_id)
        reads.rows.forget_everything()
        assert (await reads.model.blob(blob_id)).data == "wrong"
        assert (await reads.model.blob(blob_id)).data == "wrong"  # kept
        hits = reads.rows.hits
        await rebuild(blobs, dsn=blank, store=store, codec=EventCodec([]))
        for _ in range(100):  # the swap's notice arrives on the watch's own connection
            if (await reads.model.blob(blob_id)).data != "wrong":
                break
            await asyncio.sleep(0.02)
        assert (await reads.model.blob(blob_id)).data == right
        assert reads.rows.hits > hits  # and the cache is in use again
    finally:
        await conn.close()


async def test_nothing_is_served_from_the_cache_while_the_watch_cannot_hear(blank: str, reads: Reads) -> None:
    user_id = new_id()
    async with users_writer(blank) as writer:
        await writer.commit([registered(1, user_id, "first")], None)
        await reads.watch.wait(1, ["users"], 5)
        await reads.model.user(user_id)
        assert len(reads.rows) == 1
        admin = await connect(blank)
        try:
            listener = reads.watch._conn  # noqa: SLF001 - the test cuts the watch's own connection
            assert listener is not None
            await admin.execute("SELECT pg_terminate_backend($1)", listener.get_server_pid())
            # meanwhile a commit's notice is lost with the connection
            await writer.commit([registered(2, user_id, "second")], None)
            for _ in range(200):
                if not reads.watch.connected:
                    break
                await asyncio.sleep(0.01)
            assert not reads.watch.connected
            assert len(reads.rows) == 0  # forgotten with the connection
            hits = reads.rows.hits
            assert (await reads.model.user(user_id)).username == "second"
            assert (await reads.model.user(user_id)).username == "second"
            assert reads.rows.hits == hits
            await reads.watch.wait_connected(10)
            assert (await reads.model.user(user_id)).username == "second"
        finally:
            await admin.close()


async def test_a_position_moved_by_a_writer_that_names_no_rows_forgets_every_kept_row(
    blank: str, reads: Reads
) -> None:
    """A projector of an older version (or any writer that moves a checkpoint without saying
    which rows changed): what it changed is unknown, so nothing kept may be trusted."""
    user_id = new_id()
    async with users_writer(blank) as writer:
        await writer.commit([registered(1, user_id, "first")], None)
        await reads.watch.wait(1, ["users"], 5)
        await reads.model.user(user_id)
        assert len(reads.rows) == 1
        conn = await connect(blank)
        try:  # as such a writer does: the row and the checkpoint, then only "name:position"
            await conn.execute("UPDATE users SET username = 'second' WHERE user_id = $1", user_id)
            await conn.execute("UPDATE projection_checkpoints SET position = 2 WHERE name = 'users'")
            await conn.execute("SELECT pg_notify($1, 'users:2')", NOTIFY_CHANNEL)
        finally:
            await conn.close()
        await reads.watch.wait(2, ["users"], 5)
        assert len(reads.rows) == 0
        assert (await reads.model.user(user_id)).username == "second"
