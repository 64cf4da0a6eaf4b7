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
