"""The shared log reader: every subscriber sees every event once, in order, wherever it starts.

On the real JetStream store (a stream of the test's own) and on the memory
store: subscribers that start behind the shared window catch up on their own
cursor and then read from the window; a window smaller than the backlog
makes them switch back and forth; a slow subscriber never holds back a fast one.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import datetime, timezone

import pytest

from adapters.jetstream.event_store import JetStreamEventStore
from adapters.shared_log import Follower, SharedLog
from commands.ports import EventStore
from domain.ids import new_id
from domain.recorded import NewEvent
from tests.support.memory_store import MemoryEventStore


async def append(store: EventStore, n: int) -> list[int]:
    out = []
    for i in range(n):
        event = NewEvent(type="Thing.Made", version=1, at=datetime.now(timezone.utc), data={"i": i})
        out.append((await store.append("thing", new_id(), event, 0, new_id())).position)
    return out


async def collect(follower: Follower, until: int, timeout: float = 20) -> list[int]:
    seen: list[int] = []
    async with asyncio.timeout(timeout):
        while not seen or seen[-1] < until:
            seen += [r.position for r in await follower.next_batch()]
    return seen


@contextlib.asynccontextmanager
async def running(shared: SharedLog):  # type: ignore[no-untyped-def]
    task = asyncio.create_task(shared.run())
    try:
        async with asyncio.timeout(5):
            while shared.next == 0:
                await asyncio.sleep(0.01)
        yield shared
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


@pytest.fixture(params=["jetstream", "memory"])
def store(request: pytest.FixtureRequest, private_store: JetStreamEventStore) -> EventStore:
    return private_store if request.param == "jetstream" else MemoryEventStore()


async def test_subscribers_behind_at_and_ahead_of_the_window_see_every_event_once(store: EventStore) -> None:
    before = await append(store, 30)
    async with running(SharedLog(store, window=25, idle=0.2)) as shared:
        after = await append(store, 60)  # more than the window holds: the oldest leave it
        last = after[-1]
        followers = [shared.follow(p, max_batch=7, idle=0.2) for p in (1, before[10], after[0], after[45])]
        try:
            results = await asyncio.gather(*(collect(f, last) for f in followers))
        finally:
            for f in followers:
                await f.close()
    everything = before + after
    assert results[0] == everything
    assert results[1] == everything[10:]
    assert results[2] == after
    assert results[3] == after[45:]


async def test_a_follower_waits_for_new_events_and_gets_them_as_they_come(store: EventStore) -> None:
    async with running(SharedLog(store, idle=0.2)) as shared:
        follower = shared.follow(shared.next, idle=0.2)
        try:
            assert await follower.next_batch() == []  # nothing yet: idle answer
            positions = await append(store, 5)
            assert await collect(follower, positions[-1]) == positions
        finally:
            await follower.close()


async def test_a_slow_subscriber_does_not_hold_back_a_fast_one(store: EventStore) -> None:
    async with running(SharedLog(store, window=10, idle=0.2)) as shared:
        start = shared.next
        slow, fast = shared.follow(start, max_batch=1, idle=0.2), shared.follow(start, max_batch=100, idle=0.2)
        try:
            positions = await append(store, 40)
            assert await collect(fast, positions[-1]) == positions  # while slow has read nothing
            assert await collect(slow, positions[-1]) == positions  # and slow still gets everything, in order
        finally:
            await slow.close()
            await fast.close()


async def test_the_window_holds_a_bounded_number_of_bytes_and_followers_still_see_everything(
    store: EventStore,
) -> None:
    """Half-megabyte events used to be kept 20,000 deep in every process (3 MB each once decoded)."""
    big = "x" * 100_000
    async with running(SharedLog(store, window_bytes=1_000_000, idle=0.2)) as shared:
        start = shared.next
        follower = shared.follow(start, max_batch=5, idle=0.2)
        positions = []
        try:
            for i in range(40):
                event = NewEvent(type="Thing.Made", version=1, at=datetime.now(timezone.utc), data={"i": i, "t": big})
                positions.append((await store.append("thing", new_id(), event, 0, new_id())).position)
            async with asyncio.timeout(10):
                while shared.next <= positions[-1]:
                    await asyncio.sleep(0.01)
            assert shared.held_bytes <= 1_000_000, shared.held_bytes
            assert shared.first > positions[20], "the oldest big events left the window"
            assert await collect(follower, positions[-1]) == positions  # from behind the window, on its own cursor
        finally:
            await follower.close()
