"""The live router's aggregate states (``adapters/live/states.py``): an LRU bounded in entries and in
the encoded bytes of the states it keeps, exact whatever it let go (a state it no longer has is
loaded from the log)."""

from __future__ import annotations

from typing import Any

from adapters.live.states import AggregateStates, encoded_size
from commands.repository import Context, Repository
from domain.base import EventCodec
from domain.blob import Blob
from domain.ids import new_id
from domain.recorded import Recorded
from tests.support.memory_store import MemoryEventStore

ALICE = new_id()
KIB = 1024


class Log:
    def __init__(self) -> None:
        self.store = MemoryEventStore()
        self.codec = EventCodec([Blob])
        self.repo = Repository(self.store, self.codec)

    async def blob(self, data: Any) -> str:
        saved = await self.repo.execute(Blob, None, lambda _: Blob.create(ALICE, data, None, None, []),
                                        Context(ALICE, new_id()))
        return saved.aggregate.id_str

    async def update(self, blob_id: str, data: Any) -> None:
        def decide(blob: Any) -> Any:
            blob.update(data)
            return blob

        await self.repo.execute(Blob, blob_id, decide, Context(ALICE, new_id()))

    def records(self) -> list[Recorded]:
        return list(self.store.records)


async def test_many_large_blobs_never_pin_more_than_the_byte_budget() -> None:
    log = Log()
    for i in range(40):
        await log.blob({"i": i, "text": "x" * (100 * KIB)})
    states = AggregateStates(log.store, log.codec, capacity=10_000, max_bytes=1024 * KIB)
    for record in log.records():
        assert await states.after(record) is not None
        assert states.bytes <= 1024 * KIB
    assert 5 <= len(states) <= 10  # about ten 100 KiB states fit, never forty
    last = log.records()[-1]
    assert (last.aggregate_type, last.aggregate_id) in states  # the most recent stay
    assert (log.records()[0].aggregate_type, log.records()[0].aggregate_id) not in states


async def test_the_entry_bound_still_holds_for_small_states() -> None:
    log = Log()
    for i in range(10):
        await log.blob({"i": i})
    states = AggregateStates(log.store, log.codec, capacity=3)
    for record in log.records():
        await states.after(record)
    assert len(states) == 3
    assert states.bytes == sum(encoded_size(a) for a in (states.peek((r.aggregate_type, r.aggregate_id))
                                                          for r in log.records()[-3:]) if a is not None)


async def test_a_state_heavier_than_the_budget_is_not_kept_and_is_still_exact() -> None:
    log = Log()
    blob_id = await log.blob({"text": "a" * (300 * KIB)})
    await log.update(blob_id, {"text": "b" * (300 * KIB)})
    small = await log.blob({"small": True})
    states = AggregateStates(log.store, log.codec, max_bytes=200 * KIB)
    created, updated, other = log.records()
    assert (await states.after(created)).data["text"][0] == "a"  # type: ignore[union-attr]
    assert ("blob", blob_id) not in states and states.bytes == 0
    after = await states.after(updated)  # not kept: loaded from the log up to its position
    assert after is not None and after.data["text"][0] == "b" and after.version == 2  # type: ignore[attr-defined]
    assert states.loads == 1
    await states.after(other)
    assert ("blob", small) in states and 0 < states.bytes <= 200 * KIB


async def test_a_state_let_go_is_loaded_again_exactly() -> None:
    log = Log()
    first = await log.blob({"v": 1, "pad": "x" * (60 * KIB)})
    await log.blob({"pad": "y" * (60 * KIB)})  # pushes the first one out of a 100 KiB budget
    await log.update(first, {"v": 2})
    states = AggregateStates(log.store, log.codec, max_bytes=100 * KIB)
    records = log.records()
    for record in records[:2]:
        await states.after(record)
    assert ("blob", first) not in states
    updated = await states.after(records[2])
    assert updated is not None and updated.data == {"v": 2} and updated.version == 2  # type: ignore[attr-defined]
    assert states.loads == 1
    assert states.bytes <= 100 * KIB
