"""The projector runner against real NATS, PostgreSQL and MongoDB: each event applied once, halting visibly.

Every test runs on each store: PostgreSQL, MongoDB with transactions (the
session's server is a replica set), and MongoDB without them (a standalone
server, where only the position guards stand between a replay and a second
write).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, ClassVar

import asyncpg
import pytest

from adapters.jetstream.event_store import JetStreamEventStore
from adapters.mongo import collections
from adapters.mongo.client import open_mongo
from adapters.mongo.collections import CHECKPOINTS, CollectionSpec
from adapters.mongo.projector import MongoProjectionStore
from adapters.mongo.watch import MongoWatch
from adapters.positions import PositionBoard
from adapters.postgres.migrations import migrate
from adapters.postgres.pool import connect
from adapters.postgres.projector import PostgresProjectionStore
from adapters.postgres.watch import ProjectionWatch
from adapters.projector import ProjectionStore, ProjectorRunner
from domain.base import EventCodec
from domain.ids import new_id
from domain.recorded import NewEvent, Recorded
from projections.changes import Change, Upsert
from tests.support.mongo import MongoServer, new_database_name
from tests.support.servers import Database


class Stamping:
    """Writes one row per event, stamped with the runner that wrote it."""

    name: ClassVar[str] = "counting"
    tables: ClassVar[tuple[str, ...]] = ("applied",)

    def __init__(self, run: str = "a") -> None:
        self.run = run

    def changes(self, record: Recorded) -> list[Change]:
        if record.type == "Thing.Poison":
            raise ValueError("cannot project this event")
        return [Upsert("applied", ("seq",), {"seq": record.position, "run": self.run, "position": record.position})]


# PostgreSQL counts every write of a row with a trigger.
SETUP = """
CREATE TABLE applied (seq bigint PRIMARY KEY, run text NOT NULL, position bigint NOT NULL, n integer NOT NULL DEFAULT 1);
CREATE FUNCTION count_again() RETURNS trigger AS $$
BEGIN NEW.n := OLD.n + 1; RETURN NEW; END $$ LANGUAGE plpgsql;
CREATE TRIGGER count_again BEFORE UPDATE ON applied FOR EACH ROW EXECUTE FUNCTION count_again();
"""


class Killed(BaseException):
    """Stands in for the process dying between the batch and its checkpoint."""


@dataclass
class Target:
    """One store under test, and how the test looks into it."""

    kind: str
    transactional: bool
    make: Callable[..., ProjectionStore]
    rows: Callable[[], Awaitable[list[dict[str, Any]]]]
    checkpoint: Callable[[], Awaitable[dict[str, Any]]]
    writes: Callable[[], Awaitable[Counter[int]]]  # how often each row was written
    watch: Callable[[], PositionBoard]
    cleanup: list[Callable[[], Awaitable[None]]] = field(default_factory=list)


async def _postgres(database: Database) -> Target:
    dsn = await database.new_database()
    conn = await connect(dsn)
    try:
        await migrate(conn)
        await conn.execute(SETUP)
    finally:
        await conn.close()

    async def fetch(sql: str) -> list[dict[str, Any]]:
        c = await asyncpg.connect(dsn)
        try:
            return [dict(r) for r in await c.fetch(sql)]
        finally:
            await c.close()

    async def rows() -> list[dict[str, Any]]:
        return await fetch("SELECT seq, run FROM applied ORDER BY seq")

    async def checkpoint() -> dict[str, Any]:
        return (await fetch("SELECT * FROM projection_checkpoints WHERE name = 'counting'"))[0]

    async def writes() -> Counter[int]:
        return Counter({r["seq"]: r["n"] for r in await fetch("SELECT seq, n FROM applied")})

    return Target("postgres", True, lambda **kw: PostgresProjectionStore(dsn), rows, checkpoint, writes,
                  lambda: ProjectionWatch(dsn))


async def _mongo(server: MongoServer, transactions: bool) -> Target:
    mongo = await open_mongo(server.database_url(new_database_name()), transactions=transactions)
    if transactions and not mongo.transactions:
        await mongo.close()
        pytest.skip("this MongoDB offers no transactions")
    seen: Counter[int] = Counter()
    # Every write MongoDB makes to a row, from its change stream (the trigger's counterpart).
    stream = await mongo.db.applied.watch()

    async def collect() -> None:
        async for change in stream:
            seen[change["documentKey"]["_id"]] += 1

    collecting = asyncio.create_task(collect())

    async def rows() -> list[dict[str, Any]]:
        return [{"seq": d["seq"], "run": d["run"]} async for d in mongo.db.applied.find({}).sort("seq")]

    async def checkpoint() -> dict[str, Any]:
        return await mongo.db[CHECKPOINTS].find_one({"_id": "counting"}) or {}

    async def writes() -> Counter[int]:
        await asyncio.sleep(0.5)  # the stream's last events
        return Counter(seen)

    async def close() -> None:
        collecting.cancel()
        with contextlib.suppress(BaseException):
            await collecting
        await stream.close()
        await mongo.client.drop_database(mongo.db.name)
        await mongo.close()

    def make(**kw: Any) -> ProjectionStore:
        return MongoProjectionStore(mongo, **kw)

    return Target("mongo", mongo.transactions, make, rows, checkpoint, writes, lambda: MongoWatch(mongo), [close])


@asynccontextmanager
async def _target(kind: str, database: Database, mongo_server: MongoServer,
                  monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Target]:
    monkeypatch.setitem(collections.COLLECTIONS, "applied", CollectionSpec(("seq",)))
    if kind == "postgres":
        made = await _postgres(database)
    else:
        made = await _mongo(mongo_server, transactions=kind == "mongo")
    try:
        yield made
    finally:
        for step in made.cleanup:
            await step()


@pytest.fixture(params=["postgres", "mongo", "mongo-without-transactions"])
async def target(request: pytest.FixtureRequest, database: Database, mongo_server: MongoServer,
                 monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Target]:
    async with _target(request.param, database, mongo_server, monkeypatch) as made:
        yield made


@pytest.fixture(params=["mongo", "mongo-without-transactions"])
async def mongo_target(request: pytest.FixtureRequest, database: Database, mongo_server: MongoServer,
                       monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Target]:
    """MongoDB only: its lease (PostgreSQL's lock goes with the dead leader's connection)."""
    async with _target(request.param, database, mongo_server, monkeypatch) as made:
        yield made


async def append_many(store: JetStreamEventStore, n: int, type_: str = "Thing.Made") -> list[int]:
    positions = []
    for i in range(n):
        ev = NewEvent(type=type_, version=1, at=datetime.now(timezone.utc), data={"i": i})
        positions.append((await store.append("thing", new_id(), ev, 0, new_id())).position)
    return positions


async def wait_for_position(runner: ProjectorRunner, position: int, timeout: float = 15) -> None:
    async with asyncio.timeout(timeout):
        while runner.state.position < position:
            await asyncio.sleep(0.02)


def runner(target: Target, store: JetStreamEventStore, run: str = "a", store_options: dict[str, Any] | None = None,
           **kw: Any) -> ProjectorRunner:
    return ProjectorRunner(Stamping(run), target.make(**(store_options or {})), store=store, codec=EventCodec([]),
                           batch_size=50, idle_check=0.5, standby_poll=0.2, **kw)


async def test_a_crash_between_batch_and_checkpoint_writes_every_row_exactly_once(
    private_store: JetStreamEventStore, target: Target
) -> None:
    positions = await append_many(private_store, 120)
    batches: list[list[int]] = []

    def die_on_second_batch(batch: list[Recorded]) -> None:
        batches.append([r.position for r in batch])
        if len(batches) == 2:
            raise Killed()

    with pytest.raises(Killed):
        await runner(target, private_store, "a", before_checkpoint=die_on_second_batch).run()
    assert (await target.checkpoint())["position"] == batches[0][-1]

    second = runner(target, private_store, "b")
    task = asyncio.create_task(second.run())
    try:
        await wait_for_position(second, positions[-1])
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    rows = await target.rows()
    assert [r["seq"] for r in rows] == positions
    writes = await target.writes()
    assert set(writes.values()) == {1}, f"rows written twice: {[s for s, n in writes.items() if n > 1]}"
    assert (await target.checkpoint())["position"] == positions[-1]
    stamps = {r["seq"]: r["run"] for r in rows}
    assert {stamps[p] for p in batches[0]} == {"a"}
    # Atomic stores lost the crashed batch with its transaction and the resumed runner
    # wrote it; without transactions it stayed as the crashed runner wrote it, and
    # replaying it changed nothing.
    assert {stamps[p] for p in batches[1]} == ({"b"} if target.transactional else {"a"})


async def test_a_poison_event_halts_the_projection_visibly(private_store: JetStreamEventStore, target: Target) -> None:
    good = await append_many(private_store, 5)
    poison = await append_many(private_store, 1, "Thing.Poison")
    await append_many(private_store, 3)
    halting = runner(target, private_store, retry_delays=(0.01, 0.02))
    await asyncio.wait_for(halting.run(), 15)  # returns: it halted instead of skipping
    assert halting.state.status == "halted"
    assert halting.state.error_position == poison[0]
    assert "cannot project this event" in (halting.state.error or "")
    checkpoint = await target.checkpoint()
    assert checkpoint["status"] == "halted" and checkpoint["error_position"] == poison[0]
    assert checkpoint["position"] == good[-1]
    assert [r["seq"] for r in await target.rows()] == good, "nothing after the poison event may be applied"


async def test_only_one_runner_per_projection_is_active(private_store: JetStreamEventStore, target: Target) -> None:
    positions = await append_many(private_store, 10)
    # MongoDB: a stopped leader gives its lease up (best effort, 2 s); should that fail on a loaded
    # machine, a 5 s lease still hands over within the wait below (the default 15 s did not, once)
    options = {"lease_seconds": 5.0} if target.kind.startswith("mongo") else None
    a, b = runner(target, private_store, "a", options), runner(target, private_store, "b", options)
    tasks = [asyncio.create_task(a.run()), asyncio.create_task(b.run())]
    try:
        async with asyncio.timeout(15):
            while (max(a.state.position, b.state.position) < positions[-1]
                   or sorted([a.state.status, b.state.status]) != ["running", "standby"]):
                await asyncio.sleep(0.02)
        await asyncio.sleep(0.5)
        assert sorted([a.state.status, b.state.status]) == ["running", "standby"], "a second runner became active"
        leader, standby = (a, b) if a.state.active else (b, a)
        tasks[[a, b].index(leader)].cancel()
        more = await append_many(private_store, 3)
        await wait_for_position(standby, more[-1], timeout=15)
        assert {r["run"] for r in await target.rows() if r["seq"] in more} == {standby.projection.run}  # type: ignore[attr-defined]
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def test_a_mongo_standby_takes_over_once_a_dead_leaders_lease_runs_out(
    private_store: JetStreamEventStore, mongo_target: Target
) -> None:
    target = mongo_target
    positions = await append_many(private_store, 3)
    checkpoints = target.make()._mongo.db[CHECKPOINTS]  # type: ignore[attr-defined]
    # A leader that died without giving its lease back: it holds it for one more second.
    await checkpoints.insert_one({"_id": "counting", "position": 0, "status": "running", "leader": "dead",
                                  "lease_until": datetime.now(timezone.utc) + timedelta(seconds=1)})
    standby = runner(target, private_store, store_options={"lease_seconds": 5})
    task = asyncio.create_task(standby.run())
    try:
        await asyncio.sleep(0.5)
        assert standby.state.status == "standby" and standby.state.position == 0
        await wait_for_position(standby, positions[-1], timeout=15)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_the_watch_wakes_a_waiting_query_when_the_projection_commits(
    private_store: JetStreamEventStore, target: Target
) -> None:
    watch = target.watch()
    await watch.start()  # type: ignore[attr-defined]
    r = runner(target, private_store)
    task = asyncio.create_task(r.run())
    try:
        positions = await append_many(private_store, 3)
        await watch.wait(positions[-1], ["counting"], timeout=10)
        assert watch.position("counting") >= positions[-1]
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await watch.stop()  # type: ignore[attr-defined]
