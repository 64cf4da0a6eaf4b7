"""``read_range``: a stretch of the log through a subject filter, on JetStream and in memory.

A live subscription with ``since`` replays exactly this: the events of one
aggregate type (or one aggregate) between two positions, in order, none
outside the bounds.
"""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from adapters.jetstream.event_store import JetStreamEventStore
from commands.ports import EventStore
from domain.ids import new_id
from domain.recorded import NewEvent
from tests.support.memory_store import MemoryEventStore


@pytest.fixture(params=["jetstream", "memory"])
def store(request: pytest.FixtureRequest, private_store: JetStreamEventStore) -> EventStore:
    return private_store if request.param == "jetstream" else MemoryEventStore()


async def _append(store: EventStore, kind: str, aggregate_id: str, expected: int) -> int:
    event = NewEvent(type=f"{kind.title()}.Changed", version=1, at=datetime.now(timezone.utc), data={"k": kind})
    return (await store.append(kind, aggregate_id, event, expected, new_id())).position


async def test_read_range_filters_by_type_or_aggregate_and_respects_both_bounds(store: EventStore) -> None:
    one, other = new_id(), new_id()
    positions: dict[str, list[int]] = {"blob": [], "bucket": []}
    last: dict[str, int] = {one: 0, other: 0}
    for i in range(30):
        if i % 3 == 0:
            positions["bucket"].append(await _append(store, "bucket", new_id(), 0))
        else:
            target = one if i % 2 else other
            last[target] = await _append(store, "blob", target, last[target])
            positions["blob"].append(last[target])
    blobs = positions["blob"]
    lo, hi = blobs[3], blobs[-4]

    got = await store.read_range("blob", lo, hi)
    assert [r.position for r in got] == [p for p in blobs if lo <= p <= hi]
    assert {r.aggregate_type for r in got} == {"blob"}

    mine = await store.read_range("blob", 1, hi, aggregate_id=one)
    assert [r.position for r in mine] and all(r.aggregate_id == one for r in mine)
    assert [r.position for r in mine] == [r.position for r in await store.load("blob", one) if r.position <= hi]

    limited = await store.read_range("blob", 1, 10_000, limit=5)
    assert [r.position for r in limited] == blobs[:5]
    assert await store.read_range("blob", hi + 1, hi) == []
    assert await store.read_range("job", 1, 10_000) == []


async def test_read_range_with_max_bytes_stops_at_the_event_that_reaches_it_and_never_returns_none(
    store: EventStore,
) -> None:
    """What a catch-up's byte-bounded reads rely on: about ``max_bytes`` per read (the event that
    reaches it included), and an event larger than ``max_bytes`` still comes alone, never an empty
    answer that would end a replay early."""
    blob = new_id()
    positions, sizes = [], []
    for i in range(8):
        text = "x" * (20_000 if i == 4 else 1_000)
        event = NewEvent(type="Blob.Changed", version=i + 1, at=datetime.now(timezone.utc), data={"t": text})
        appended = await store.append("blob", blob, event, positions[-1] if positions else 0, new_id())
        positions.append(appended.position)
        sizes.append(appended.size)
    first, last = positions[0], positions[-1]

    # the server counts a message's headers too, the memory store its payload only: so "about"
    got = await store.read_range("blob", first, last, max_bytes=sizes[0] * 5 // 2)
    assert [r.position for r in got] in (positions[:2], positions[:3])
    huge = await store.read_range("blob", positions[4], last, max_bytes=100)
    assert [r.position for r in huge] == [positions[4]]
    assert [r.position for r in await store.read_range("blob", first, last, max_bytes=10**9)] == positions
    whole, start = [], first
    while start <= last:  # the loop a catch-up runs: every event once, in order
        batch = await store.read_range("blob", start, last, max_bytes=5_000)
        assert batch and sum(r.size for r in batch[:-1]) < 5_000
        whole += [r.position for r in batch]
        start = batch[-1].position + 1
    assert whole == positions
