"""Loads fold an aggregate's history a bounded batch at a time, never the whole history as one list.

A blob edited thousands of times weighs gigabytes in the log; its state is at most one blob.
The store here hands out records it can watch (weak references): at every read of the log,
what is still alive of the records it handed out before is at most the last one (what the
repository keeps to know the aggregate's position), so a load never holds more than the batch
it is reading. Results are compared with the one-list fold the repository did before.
"""

from __future__ import annotations

import asyncio
import contextvars
import dataclasses
import weakref
from collections.abc import Callable
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.runtime.bootstrap import aggregates, snapshotting
from commands.repository import Context, Repository
from domain.base import EventCodec
from domain.blob import Blob
from domain.errors import DomainError, PreconditionFailed
from domain.ids import new_id
from domain.recorded import Recorded
from domain.snapshot import Taken
from tests.support.memory_snapshots import MemorySnapshots
from tests.support.memory_store import MemoryEventStore

CODEC = EventCodec(aggregates())
OWNER = new_id()
BUCKETS = [new_id(), new_id(), new_id()]
KIB = 1024
BATCH = 64 * KIB
current: contextvars.ContextVar[str] = contextvars.ContextVar("current", default="")


class _Watched(Recorded):
    """A record the store can hold a weak reference to."""

    __slots__ = ("__weakref__",)


class WatchingStore(MemoryEventStore):
    """Every ``load`` noted: its bounds, the bytes it answered, and how many of the records
    handed out before are still alive when it is called."""

    def __init__(self) -> None:
        super().__init__()
        self.watching = False
        self.loads: list[dict[str, Any]] = []
        self._handed: list[weakref.ref[Recorded]] = []

    def watch(self) -> None:
        self.watching, self.loads, self._handed = True, [], []

    async def load(self, aggregate_type: str, aggregate_id: str, **bounds: Any) -> list[Recorded]:  # type: ignore[override]
        records = await super().load(aggregate_type, aggregate_id, **bounds)
        if not self.watching:
            return records
        alive = sum(1 for ref in self._handed if ref() is not None)
        watched = [_Watched(*(getattr(r, f.name) for f in dataclasses.fields(Recorded))) for r in records]
        self._handed.extend(weakref.ref(r) for r in watched)
        self.loads.append({**bounds, "answered": sum(r.size for r in watched), "count": len(watched),
                           "alive_before": alive})
        return watched  # type: ignore[return-value]

    def assert_bounded(self, batch: int) -> None:
        assert self.loads, "the repository read the log"
        for load in self.loads:
            assert load.get("max_bytes") is not None and load["max_bytes"] <= batch, load
            assert load["answered"] <= batch or load["count"] == 1, load
            assert load["alive_before"] <= 1, f"records of earlier batches still held: {load}"


def ctx(command_id: str | None = None) -> Context:
    return Context(actor=OWNER, command_id=command_id or new_id())


def state(aggregate: object) -> dict[str, Any]:
    return {k: v for k, v in vars(aggregate).items() if k != "_pending_events"}


def updating(data: Any):  # type: ignore[no-untyped-def]
    def decide(blob: Blob | None) -> Blob:
        assert blob is not None
        blob.update(data)
        return blob

    return decide


async def long_blob(store: MemoryEventStore, updates: int, size: int,
                    command_ids: Callable[[], str] = new_id) -> tuple[str, list[str]]:
    """A blob updated ``updates`` times with about ``size`` bytes each; the command ids (each from
    ``command_ids``), in order."""
    repo = Repository(store, CODEC)
    commands = [command_ids()]
    created = await repo.execute(Blob, None, lambda _: Blob.create(OWNER, {"n": 0}, None, None, BUCKETS[:2]),
                                 ctx(commands[0]))
    blob_id = created.aggregate.id_str
    for n in range(1, updates + 1):
        commands.append(command_ids())
        await repo.execute(Blob, blob_id, updating({"n": n, "pad": "x" * size}), ctx(commands[-1]))
    return blob_id, commands


async def one_list(store: MemoryEventStore, blob_id: str, until: int | None = None) -> tuple[Blob, int, int]:
    """What the repository did before: every event in one list, folded."""
    records = await MemoryEventStore.load(store, "blob", blob_id, until_position=until)
    folded = CODEC.rebuild(records)
    assert isinstance(folded, Blob)
    return folded, records[-1].position, sum(r.size for r in records)


async def test_a_long_aggregate_is_folded_one_bounded_batch_at_a_time() -> None:
    store = WatchingStore()
    blob_id, _ = await long_blob(store, updates=120, size=10 * KIB)  # ~1.2 MiB: ~20 batches of 64 KiB
    expected, position, weight = await one_list(store, blob_id)
    repo = Repository(store, CODEC, fold_bytes=BATCH)
    store.watch()
    saved = await repo.get_and_keep(Blob, blob_id)
    assert saved is not None and state(saved.aggregate) == state(expected) and saved.position == position
    assert repo.cached_bytes == weight, "the cache weighs it as before"
    store.assert_bounded(BATCH)
    assert len(store.loads) >= weight // BATCH, "read in many requests"
    assert all(load["count"] for load in store.loads), "no request more once the log said nothing follows"

    store.watch()  # a past position (as_of, a retried command's answer)
    past = await repo.get(Blob, blob_id, until_position=position - 40)
    old, old_position, _ = await one_list(store, blob_id, until=position - 40)
    assert past is not None and state(past.aggregate) == state(old) and past.position == old_position
    store.assert_bounded(BATCH)


async def test_a_retried_command_on_a_long_aggregate_is_answered_from_bounded_batches() -> None:
    store = WatchingStore()
    blob_id, commands = await long_blob(store, updates=120, size=10 * KIB)
    records = await MemoryEventStore.load(store, "blob", blob_id)
    # a retry whose decision succeeds again: the log answers "duplicate", the first attempt's state comes back
    store.watch()
    repo = Repository(store, CODEC, fold_bytes=BATCH)
    again = await repo.execute(Blob, blob_id, updating({"n": 30, "pad": "x" * 10 * KIB}), ctx(commands[30]))
    first, position, _ = await one_list(store, blob_id, until=records[30].position)
    assert again.position == position == records[30].position and state(again.aggregate) == state(first)
    store.assert_bounded(BATCH)

    # a retry whose decision now fails (the blob left that bucket long ago): found by its command id
    mover = Repository(store, CODEC)
    move_id = new_id()
    moved = await mover.execute(Blob, blob_id, lambda b: (b.move(BUCKETS[0], BUCKETS[2]), b)[1], ctx(move_id))
    moved_version = moved.aggregate.version  # the writer's cached blob changes in place with its next edits
    for n in range(40):
        await mover.execute(Blob, blob_id, updating({"after": n, "pad": "y" * 10 * KIB}), ctx())
    store.watch()
    repo = Repository(store, CODEC, fold_bytes=BATCH)
    retried = await repo.execute(Blob, blob_id, lambda b: (b.move(BUCKETS[0], BUCKETS[2]), b)[1], ctx(move_id))
    assert retried.position == moved.position and retried.aggregate.bucket_ids == [BUCKETS[2], BUCKETS[1]]
    assert retried.aggregate.version == moved_version
    store.assert_bounded(BATCH)
    starts = [i for i, load in enumerate(store.loads) if load["from_position"] == 1]
    assert len(starts) == 2, "the load, then the search for the command id"
    search = store.loads[starts[-1]:]
    assert search[-1]["count"] > 0 and search[-1]["from_position"] <= moved.position, "it stopped at the event"


async def test_a_stale_if_match_on_a_long_aggregate_scans_it_in_bounded_batches() -> None:
    store = WatchingStore()
    blob_id, _ = await long_blob(store, updates=120, size=10 * KIB)

    def stale(blob: Blob | None) -> Blob:
        assert blob is not None
        raise PreconditionFailed(f"the blob is at version {blob.version}")

    store.watch()
    with pytest.raises(PreconditionFailed):
        await Repository(store, CODEC, fold_bytes=BATCH).execute(Blob, blob_id, stale, ctx())
    store.assert_bounded(BATCH)
    assert len(store.loads) >= 2 * 120 * 10 * KIB // BATCH, "the load, then the search for the command id"


async def test_a_refused_command_with_a_fresh_command_id_reads_the_history_once() -> None:
    """Without an Idempotency-Key, the HTTP layer makes a command id up (``fresh``): no event can
    carry it, so a refusal does not search the history for it. Otherwise one account could make
    every stale write it sends read its longest blob's whole history a second time."""
    store = WatchingStore()
    blob_id, _ = await long_blob(store, updates=120, size=10 * KIB)

    def stale(blob: Blob | None) -> Blob:
        assert blob is not None
        raise PreconditionFailed(f"the blob is at version {blob.version}")

    store.watch()
    fresh = Context(actor=OWNER, command_id=new_id(), fresh=True)
    with pytest.raises(PreconditionFailed):
        await Repository(store, CODEC, fold_bytes=BATCH).execute(Blob, blob_id, stale, fresh)
    store.assert_bounded(BATCH)
    assert [load["from_position"] for load in store.loads].count(1) == 1, "the load only, no search"
    assert sum(load["answered"] for load in store.loads) < 2 * 120 * 10 * KIB


async def test_one_actors_searches_for_command_ids_run_one_after_the_other() -> None:
    """A burst of keyed stale writes by one account reads the long history once after the other
    (each search may read all of it), while another account's search does not wait for them."""
    store = WatchingStore()
    blob_id, _ = await long_blob(store, updates=60, size=10 * KIB)
    repo = Repository(store, CODEC, fold_bytes=BATCH)
    reading: dict[str, int] = {}
    most: dict[str, int] = {}
    load = store.load_page

    async def counted(*args: Any, **kwargs: Any) -> Any:
        actor = current.get()
        reading[actor] = reading.get(actor, 0) + 1
        most[actor] = max(most.get(actor, 0), reading[actor])
        try:
            await asyncio.sleep(0.001)
            return await load(*args, **kwargs)
        finally:
            reading[actor] -= 1

    store.load_page = counted  # type: ignore[method-assign]

    async def search(actor: str) -> None:
        current.set(actor)
        await repo.replayed(Blob, blob_id, Context(actor=actor, command_id=new_id()))

    await asyncio.gather(*(search("mallory") for _ in range(5)), search("alice"))
    assert most["mallory"] == 1, "one search of hers at a time"
    assert most["alice"] == 1


async def test_snapshots_are_taken_and_used_as_before_across_batches() -> None:
    store, snapshots = WatchingStore(), MemorySnapshots()
    blob_id, _ = await long_blob(store, updates=60, size=10 * KIB)

    def repo() -> Repository:
        return Repository(store, CODEC, snapshots=snapshots, snapshotting=snapshotting(), snapshot_after=32,
                          fold_bytes=BATCH)

    store.watch()
    first = await repo().get(Blob, blob_id)
    store.assert_bounded(BATCH)
    raw = snapshots.kept[("blob", blob_id)]
    taken = Taken.from_json(orjson.loads(raw), size=len(raw))
    assert first is not None and taken is not None and taken.position == first.position
    for n in range(45):  # 45 events after the snapshot, several batches
        await Repository(store, CODEC).execute(Blob, blob_id, updating({"later": n, "pad": "z" * 10 * KIB}), ctx())
    expected, position, _ = await one_list(store, blob_id)
    store.watch()
    reader = repo()
    second = await reader.get_and_keep(Blob, blob_id)
    assert second is not None and reader.snapshot_hits == 1 and reader.log_loads == 0
    assert state(second.aggregate) == state(expected) and second.position == position
    after = await MemoryEventStore.load(store, "blob", blob_id, from_position=taken.position + 1)
    assert reader.cached_bytes == taken.size + sum(r.size for r in after), "weighed as before"
    store.assert_bounded(BATCH)
    assert store.loads[0]["from_position"] == taken.position, "the snapshot's own event is checked first"
    assert Taken.from_json(orjson.loads(snapshots.kept[("blob", blob_id)])).position == position  # type: ignore[union-attr]


@st.composite
def histories(draw: st.DrawFn) -> list[tuple[str, Any]]:
    steps = draw(st.lists(st.one_of(
        st.tuples(st.just("update"), st.integers(0, 3000)),
        st.tuples(st.just("move"), st.integers(0, 2)),
        st.tuples(st.just("other"), st.integers(0, 500)),
    ), max_size=30))  # fmt: skip
    if draw(st.booleans()):
        steps.append(("delete", 0))
    return steps


@settings(max_examples=60, deadline=None)
@given(steps=histories(), batch=st.integers(1, 12_000), cut=st.integers(0, 40), pick=st.integers(0, 40))
def test_a_batched_fold_gives_what_the_one_list_fold_gave(steps, batch, cut, pick) -> None:  # type: ignore[no-untyped-def]
    asyncio.run(_compare(steps, batch, cut, pick))


async def _compare(steps: list[tuple[str, Any]], batch: int, cut: int, pick: int) -> None:
    store = WatchingStore()
    writer = Repository(store, CODEC)
    commands = [new_id()]
    created = await writer.execute(Blob, None, lambda _: Blob.create(OWNER, {"n": 0}, None, None, BUCKETS[:2]),
                                   ctx(commands[0]))
    blob_id = created.aggregate.id_str
    for kind, value in steps:
        command_id = new_id()
        if kind == "other":  # another aggregate's event between this one's
            await writer.execute(Blob, None, lambda _, v=value: Blob.create(OWNER, "o" * v, None, None, []), ctx())
            continue
        if kind == "update":
            decide = updating({"pad": "u" * value})
        elif kind == "move":
            def decide(b: Blob | None, v: int = value) -> Blob:
                assert b is not None
                source = b.bucket_ids[v % len(b.bucket_ids)]
                target = next(x for x in BUCKETS if x not in b.bucket_ids)
                b.move(source, target)
                return b
        else:
            def decide(b: Blob | None) -> Blob:
                assert b is not None
                b.delete()
                return b
        try:
            await writer.execute(Blob, blob_id, decide, ctx(command_id))
        except DomainError:
            continue
        commands.append(command_id)
    records = await MemoryEventStore.load(store, "blob", blob_id)

    store.watch()
    repo = Repository(store, CODEC, fold_bytes=batch)
    expected, position, weight = await one_list(store, blob_id)
    saved = await repo.get_and_keep(Blob, blob_id)
    assert saved is not None and state(saved.aggregate) == state(expected) and saved.position == position
    assert repo.cached_bytes == (weight if weight <= 256 * 1024 * 1024 else 0)
    until = records[min(cut, len(records) - 1)].position
    past = await repo.get(Blob, blob_id, until_position=until)
    old, old_position, _ = await one_list(store, blob_id, until=until)
    assert past is not None and state(past.aggregate) == state(old) and past.position == old_position
    chosen = commands[min(pick, len(commands) - 1)]
    replayed = await repo.replayed(Blob, blob_id, ctx(chosen))
    at = next(r.position for r in records if r.command_id == chosen)
    first, _, _ = await one_list(store, blob_id, until=at)
    assert replayed is not None and replayed.position == at and state(replayed.aggregate) == state(first)
    assert await repo.replayed(Blob, blob_id, ctx()) is None
    for version in (cut, len(records), len(records) + 1):  # what a revert and a job's input read
        before = CODEC.rebuild([r for r in records if r.version <= version])
        found = await repo.at_version(Blob, blob_id, version)
        assert (found is None) == (before is None) and (found is None or state(found) == state(before))
    store.assert_bounded(batch)
