"""The store-independent projector runner (adapters/projector.py) on an in-memory log and store."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timezone
from typing import Any, ClassVar

from adapters.projector import BeforeCheckpoint, Committed, Projected, ProjectorRunner
from domain.base import EventCodec
from domain.recorded import NewEvent, Recorded
from projections.changes import Change, Projection, Upsert
from tests.support.memory_store import MemoryEventStore


class Rows:
    name: ClassVar[str] = "rows"
    tables: ClassVar[tuple[str, ...]] = ("rows",)

    def changes(self, record: Recorded) -> list[Change]:
        return [Upsert("rows", ("id",), {"id": record.position})]


class MemoryProjectionStore:
    kind = "memory"

    def __init__(self) -> None:
        self.checkpoint = 0
        self.rows: list[int] = []

    def is_outage(self, exc: BaseException) -> bool:
        return False

    @asynccontextmanager
    async def writer(self, projection: Projection) -> AsyncIterator[Any]:
        yield self

    async def lead(self) -> bool:
        return True

    async def start(self) -> int:
        return self.checkpoint

    async def commit(self, events: list[Projected], before_checkpoint: BeforeCheckpoint | None) -> Committed:
        events = [e for e in events if e.position > self.checkpoint]
        self.rows += [c.row["id"] for e in events for c in e.changes if isinstance(c, Upsert)]
        if events:
            self.checkpoint = events[-1].position
        return Committed(self.checkpoint, [e.record for e in events])

    async def halt(self, position: int, error: str) -> None:
        raise AssertionError(error)

    async def idle(self) -> None:
        pass


class SwallowingLog(MemoryEventStore):
    """``last_position`` loses a cancellation, as nats-py's ``asyncio.wait_for`` can on Python 3.11."""

    def __init__(self) -> None:
        super().__init__()
        self.asking = asyncio.Event()

    async def last_position(self) -> int:
        self.asking.set()
        try:
            await asyncio.sleep(0.05)
        except asyncio.CancelledError:
            pass
        finally:
            self.asking.clear()
        return await super().last_position()


async def test_a_runner_stops_when_cancelled_even_if_the_log_client_swallowed_the_cancellation() -> None:
    log = SwallowingLog()
    for i in range(3):
        await log.append("thing", f"t{i}", NewEvent("Thing.Made", 1, datetime.now(timezone.utc), {}), 0, f"c{i}")
    target = MemoryProjectionStore()
    runner = ProjectorRunner(Rows(), target, store=log, codec=EventCodec([]), idle_check=0.05)
    task = asyncio.create_task(runner.run())
    async with asyncio.timeout(5):
        while target.checkpoint < 3:
            await asyncio.sleep(0.01)
    await log.asking.wait()  # cancel while it asks the log for its last position (its idle tick)
    task.cancel()
    done, _ = await asyncio.wait([task], timeout=3)
    assert done, "the runner went on after its cancellation"
    assert target.rows == [1, 2, 3]


class CountingStore(MemoryProjectionStore):
    def __init__(self) -> None:
        super().__init__()
        self.commits: list[tuple[int, int]] = []  # (events, their bytes) of each commit

    async def commit(self, events: list[Projected], before_checkpoint: BeforeCheckpoint | None) -> Committed:
        self.commits.append((len(events), sum(e.record.size for e in events)))
        return await super().commit(events, before_checkpoint)


async def test_a_commit_holds_at_most_batch_bytes_of_events_and_a_large_event_alone() -> None:
    """A batch of many large events (a user's 512 KiB blobs) is cut into commits of a bounded size: one
    MongoDB transaction cannot hold 250 MB, and the error it gives is labelled transient."""
    log = MemoryEventStore()
    sizes = [300_000, 300_000, 300_000, 900_000, 10, 10, 600_000]
    for i, size in enumerate(sizes):
        await log.append("thing", f"t{i}", NewEvent("Thing.Made", 1, datetime.now(timezone.utc), {"x": "y" * size}), 0,
                         f"c{i}")
    target = CountingStore()
    runner = ProjectorRunner(Rows(), target, store=log, codec=EventCodec([]), idle_check=0.05, batch_bytes=700_000)
    task = asyncio.create_task(runner.run())
    try:
        async with asyncio.timeout(5):
            while target.checkpoint < len(sizes):
                await asyncio.sleep(0.01)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert target.rows == list(range(1, len(sizes) + 1))  # every event once, in order
    assert all(size <= 700_000 or count == 1 for count, size in target.commits), target.commits
    assert (1, 900_008) in target.commits  # the 900 kB event alone, nothing with it
