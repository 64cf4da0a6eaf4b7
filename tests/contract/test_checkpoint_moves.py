"""Checkpoint moves of projections that a batch does not change, made together on PostgreSQL.

Every projection of a process receives the same batch; those with nothing to
apply move their checkpoints in one statement. What a user relies on: every
checkpoint still reaches the batch's position, every move still wakes the
read-your-writes waits (one NOTIFY per projection), and a failure of the
connection that made the shared statement costs the others nothing.
"""

from __future__ import annotations

import asyncio
from contextlib import AsyncExitStack
from datetime import datetime, timezone
from typing import ClassVar

import asyncpg
import pytest

from adapters.postgres.migrations import migrate
from adapters.postgres.pool import connect
from adapters.postgres.projector import NOTIFY_CHANNEL, PostgresProjectionStore, PostgresWriter
from adapters.projector import Projected
from domain.ids import new_id
from domain.recorded import Recorded


class Named:
    tables: ClassVar[tuple[str, ...]] = ()

    def __init__(self, name: str) -> None:
        self.name = name


def batch_up_to(position: int) -> list[Projected]:
    record = Recorded(position, "thing", new_id(), "Thing.Happened", 1, datetime.now(timezone.utc), {})
    return [Projected(record, [])]


async def checkpoints(dsn: str, names: list[str]) -> dict[str, int]:
    conn = await connect(dsn)
    try:
        rows = await conn.fetch("SELECT name, position FROM projection_checkpoints WHERE name = ANY($1)", names)
    finally:
        await conn.close()
    return {r["name"]: r["position"] for r in rows}


async def writers(stack: AsyncExitStack, store: PostgresProjectionStore, names: list[str]) -> list[PostgresWriter]:
    out = []
    for name in names:
        writer = await stack.enter_async_context(store.writer(Named(name)))  # type: ignore[arg-type]
        assert await writer.lead()
        await writer.start()
        out.append(writer)
    return out


@pytest.fixture
async def names(pg_dsn: str) -> list[str]:
    conn = await connect(pg_dsn)
    try:
        await migrate(conn)  # the checkpoints table (a test may run before any system started)
    finally:
        await conn.close()
    return [f"moves_{new_id()[-12:]}_{i}" for i in range(6)]


async def test_every_projection_reaches_the_batch_and_each_move_is_notified(pg_dsn: str, names: list[str]) -> None:
    heard: list[str] = []
    listener = await connect(pg_dsn)
    await listener.add_listener(NOTIFY_CHANNEL, lambda _c, _p, _ch, payload: heard.append(payload))
    try:
        async with AsyncExitStack() as stack:
            ws = await writers(stack, PostgresProjectionStore(pg_dsn), names)
            await asyncio.gather(*(w.advance(batch_up_to(40)) for w in ws))
            await asyncio.gather(*(w.advance(batch_up_to(41 + i)) for i, w in enumerate(ws)))
            await ws[0].advance(batch_up_to(30))  # never back
        last = {f"{n}:{41 + i}" for i, n in enumerate(names)}
        for _ in range(100):  # notifications arrive on their own connection
            if last <= set(heard):
                break
            await asyncio.sleep(0.05)
    finally:
        await listener.close()
    assert await checkpoints(pg_dsn, names) == {n: 41 + i for i, n in enumerate(names)}
    for i, name in enumerate(names):
        assert f"{name}:40" in heard and f"{name}:{41 + i}" in heard, (name, heard)
    assert f"{names[0]}:30" not in heard


async def test_a_failed_shared_move_leaves_the_others_to_move_on_their_own(pg_dsn: str, names: list[str]) -> None:
    blocker = await connect(pg_dsn)
    try:
        async with AsyncExitStack() as stack:
            ws = await writers(stack, PostgresProjectionStore(pg_dsn), names)
            # The first to arrive makes the shared statement on its own connection; there it times
            # out, waiting for a row another transaction holds (the first projection's).
            await ws[0]._conn.execute("SET statement_timeout = 300")
            tx = blocker.transaction()
            await tx.start()
            await blocker.execute("SELECT 1 FROM projection_checkpoints WHERE name = $1 FOR UPDATE", names[0])
            results = await asyncio.gather(*(w.advance(batch_up_to(77)) for w in ws), return_exceptions=True)
            await tx.rollback()
    finally:
        await blocker.close()
    assert isinstance(results[0], asyncpg.QueryCanceledError), results[0]
    assert all(not isinstance(r, BaseException) for r in results[1:]), results
    moved = await checkpoints(pg_dsn, names)
    assert moved[names[0]] == 0
    assert all(moved[n] == 77 for n in names[1:]), moved


async def test_moves_of_one_process_do_not_wait_for_another_process(pg_dsn: str, names: list[str]) -> None:
    """Two stores (two processes) never share a statement: each moves its own."""
    async with AsyncExitStack() as stack:
        a = await writers(stack, PostgresProjectionStore(pg_dsn), names[:3])
        b = await writers(stack, PostgresProjectionStore(pg_dsn), names[3:])
        await asyncio.gather(*(w.advance(batch_up_to(5)) for w in a + b))
    assert await checkpoints(pg_dsn, names) == {n: 5 for n in names}



async def test_a_runner_that_lost_its_lock_moves_nothing_through_another_connection(
    pg_dsn: str, names: list[str]
) -> None:
    """A process whose runner lost the lead (its connection's lock is gone) must not move the
    checkpoint that the new leader owns, even when another connection carries the move."""
    async with AsyncExitStack() as stack:
        ws = await writers(stack, PostgresProjectionStore(pg_dsn), names[:2])
        await ws[1]._conn.execute("SELECT pg_advisory_unlock_all()")  # as if its session had ended
        await asyncio.gather(*(w.advance(batch_up_to(9)) for w in ws))
    assert await checkpoints(pg_dsn, names[:2]) == {names[0]: 9, names[1]: 0}
