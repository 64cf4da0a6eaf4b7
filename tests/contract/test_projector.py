"""The projector runner against real NATS and PostgreSQL: exactly once, halting visibly."""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone
from typing import ClassVar

import asyncpg
import pytest

from adapters.jetstream.event_store import JetStreamEventStore
from adapters.postgres.migrations import migrate
from adapters.postgres.pool import connect
from adapters.postgres.projector import ProjectorRunner
from adapters.postgres.watch import ProjectionWatch
from domain.base import EventCodec
from domain.ids import new_id
from domain.recorded import NewEvent, Recorded
from projections.changes import Change, Upsert
from tests.support.servers import Database


class Counting:
    """Writes one row per event; a trigger counts how often each was applied."""

    name: ClassVar[str] = "counting"
    tables: ClassVar[tuple[str, ...]] = ("applied",)

    def changes(self, record: Recorded) -> list[Change]:
        if record.type == "Thing.Poison":
            raise ValueError("cannot project this event")
        return [Upsert("applied", ("position",), {"position": record.position, "n": 1})]


SETUP = """
CREATE TABLE applied (position bigint PRIMARY KEY, n integer NOT NULL);
CREATE FUNCTION count_again() RETURNS trigger AS $$
BEGIN NEW.n := OLD.n + 1; RETURN NEW; END $$ LANGUAGE plpgsql;
CREATE TRIGGER count_again BEFORE UPDATE ON applied FOR EACH ROW EXECUTE FUNCTION count_again();
"""


class Killed(BaseException):
    """Stands in for the process dying between the batch and its checkpoint."""


@pytest.fixture
async def fresh_dsn(database: Database) -> str:
    dsn = await database.new_database()
    conn = await connect(dsn)
    try:
        await migrate(conn)
        await conn.execute(SETUP)
    finally:
        await conn.close()
    return dsn


async def append_many(store: JetStreamEventStore, n: int, type_: str = "Thing.Made") -> list[int]:
    positions = []
    for i in range(n):
        ev = NewEvent(type=type_, version=1, at=datetime.now(timezone.utc), data={"i": i})
        positions.append((await store.append("thing", new_id(), ev, 0, new_id())).position)
    return positions


async def wait_for_position(runner: ProjectorRunner, position: int, timeout: float = 10) -> None:
    async with asyncio.timeout(timeout):
        while runner.state.position < position:
            await asyncio.sleep(0.02)


def runner(dsn: str, store: JetStreamEventStore, **kw: object) -> ProjectorRunner:
    return ProjectorRunner(Counting(), dsn=dsn, store=store, codec=EventCodec([]), batch_size=50, idle_check=0.5, **kw)  # type: ignore[arg-type]


async def test_a_crash_between_batch_and_checkpoint_applies_every_event_exactly_once(
    private_store: JetStreamEventStore, fresh_dsn: str
) -> None:
    positions = await append_many(private_store, 120)
    calls = 0

    def die_on_second_batch(batch: list[Recorded]) -> None:
        nonlocal calls
        calls += 1
        if calls == 2:
            raise Killed()

    with pytest.raises(Killed):
        await runner(fresh_dsn, private_store, before_checkpoint=die_on_second_batch).run()

    second = runner(fresh_dsn, private_store)
    task = asyncio.create_task(second.run())
    try:
        await wait_for_position(second, positions[-1])
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    conn = await asyncpg.connect(fresh_dsn)
    try:
        rows = await conn.fetch("SELECT position, n FROM applied ORDER BY position")
        checkpoint = await conn.fetchval("SELECT position FROM projection_checkpoints WHERE name='counting'")
    finally:
        await conn.close()
    assert [r["position"] for r in rows] == positions
    assert {r["n"] for r in rows} == {1}, "an event was applied twice"
    assert checkpoint == positions[-1]


async def test_a_poison_event_halts_the_projection_visibly(private_store: JetStreamEventStore, fresh_dsn: str) -> None:
    good = await append_many(private_store, 5)
    poison = await append_many(private_store, 1, "Thing.Poison")
    await append_many(private_store, 3)
    halting = runner(fresh_dsn, private_store, retry_delays=(0.01, 0.02))
    await asyncio.wait_for(halting.run(), 15)  # returns: it halted instead of skipping
    assert halting.state.status == "halted"
    assert halting.state.error_position == poison[0]
    assert "cannot project this event" in (halting.state.error or "")
    conn = await asyncpg.connect(fresh_dsn)
    try:
        row = await conn.fetchrow("SELECT * FROM projection_checkpoints WHERE name='counting'")
        applied = [r["position"] for r in await conn.fetch("SELECT position FROM applied ORDER BY position")]
    finally:
        await conn.close()
    assert row["status"] == "halted" and row["error_position"] == poison[0]
    assert row["position"] == good[-1]
    assert applied == good, "nothing after the poison event may be applied"


async def test_only_one_runner_per_projection_is_active(private_store: JetStreamEventStore, fresh_dsn: str) -> None:
    positions = await append_many(private_store, 10)
    a, b = runner(fresh_dsn, private_store), runner(fresh_dsn, private_store)
    tasks = [asyncio.create_task(a.run()), asyncio.create_task(b.run())]
    try:
        async with asyncio.timeout(10):
            while max(a.state.position, b.state.position) < positions[-1]:
                await asyncio.sleep(0.02)
        await asyncio.sleep(0.3)
        assert sorted([a.state.status, b.state.status]) == ["running", "standby"]
        leader, standby = (a, b) if a.state.active else (b, a)
        tasks[[a, b].index(leader)].cancel()
        more = await append_many(private_store, 3)
        await wait_for_position(standby, more[-1], timeout=15)
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def test_the_watch_wakes_a_waiting_query_when_the_projection_commits(
    private_store: JetStreamEventStore, fresh_dsn: str
) -> None:
    watch = ProjectionWatch(fresh_dsn)
    await watch.start()
    r = runner(fresh_dsn, private_store)
    task = asyncio.create_task(r.run())
    try:
        positions = await append_many(private_store, 3)
        await watch.wait(positions[-1], ["counting"], timeout=10)
        assert watch.position("counting") >= positions[-1]
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await watch.stop()
