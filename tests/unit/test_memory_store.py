"""The in-memory event store fake behaves like the JetStream one."""

from __future__ import annotations

import pytest

from domain.errors import ConcurrencyError
from domain.recorded import NewEvent
from domain.schema import Schema
from tests.support.memory_store import MemoryEventStore


async def test_memory_store_checks_expectations_and_duplicates() -> None:
    store = MemoryEventStore()
    event = NewEvent(type="Blob.Created", version=1, at=Schema.Event.create_timestamp(), data={"a": [1]})
    assert (await store.append("blob", "x", event, 0, "c1")).position == 1
    assert (await store.append("blob", "x", event, 0, "c1")).duplicate  # stale expectation, own last event
    with pytest.raises(ConcurrencyError):
        await store.append("blob", "x", event, 0, "c2")
    assert (await store.append("blob", "y", event, 0, "c1")).duplicate  # same command id elsewhere
    assert (await store.append("blob", "x", event, 1, "c3")).position == 2
    assert [r.position for r in await store.load("blob", "x", until_position=1)] == [1]
    assert [r.position for r in await store.load("blob", "x", from_position=2)] == [2]
    assert await store.last_position() == 2 and (await store.event_at(2)).command_id == "c3"  # type: ignore[union-attr]
    seen = []
    async for record in store.read_all(2):
        seen.append(record.position)
        break
    assert seen == [2]
