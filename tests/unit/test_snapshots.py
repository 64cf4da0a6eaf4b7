"""Snapshots load an aggregate exactly as folding its whole history would, or are not used.

The repository runs on the in-memory log and snapshot store (both keep JSON,
as the wire does); two repositories on one log stand for two processes.
"""

from __future__ import annotations

from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.runtime.bootstrap import aggregates, snapshotting
from commands.repository import Context, Repository
from domain.base import EventCodec
from domain.blob import Blob
from domain.ids import new_id
from domain.recorded import NewEvent, Recorded
from domain.schema import Schema
from domain.snapshot import Taken, restore, take
from tests.support.memory_snapshots import MemorySnapshots
from tests.support.memory_store import MemoryEventStore

CODEC = EventCodec(aggregates())
OWNER = new_id()
BUCKETS = [new_id(), new_id(), new_id()]


def ctx() -> Context:
    return Context(actor=OWNER, command_id=new_id())


def repository(store: MemoryEventStore, snapshots: MemorySnapshots, after: int = 5) -> Repository:
    return Repository(store, CODEC, snapshots=snapshots, snapshotting=snapshotting(), snapshot_after=after)


def state(aggregate: object) -> dict[str, Any]:
    return {k: v for k, v in vars(aggregate).items() if k != "_pending_events"}


async def blob_with_history(repo: Repository, updates: int) -> str:
    created = await repo.execute(
        Blob, None, lambda _: Blob.create(OWNER, {"n": 0}, None, None, BUCKETS[:2]), ctx()
    )
    blob_id = created.aggregate.id_str
    for n in range(1, updates + 1):
        await repo.execute(Blob, blob_id, lambda b, n=n: (b.update({"n": n, "text": "x" * n}), b)[1], ctx())
    return blob_id


async def full_fold(store: MemoryEventStore, blob_id: str) -> Blob:
    folded = CODEC.rebuild(await store.load("blob", blob_id))
    assert isinstance(folded, Blob)
    return folded


text = st.text(st.characters(blacklist_categories=("Cs", "Cc")), max_size=20)  # what the read models store
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.floats(allow_nan=False, allow_infinity=False)
    | text,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(text, inner, max_size=4),
    max_leaves=20,
)  # fmt: skip


@settings(max_examples=60, deadline=None)
@given(first=json_values, then=st.lists(json_values, max_size=4), moved=st.booleans(), deleted=st.booleans())
def test_a_snapshot_read_back_from_json_restores_the_folded_state(first, then, moved, deleted) -> None:  # type: ignore[no-untyped-def]
    blob = Blob.create(OWNER, first, "doc@1.0.0", None, BUCKETS[:2])
    for data in then:
        blob.update(data)
    if moved:
        blob.move(BUCKETS[0], BUCKETS[2])
    if deleted:
        blob.delete()
    store_records = []
    for position, event in enumerate(blob.collect_events(), start=1):
        encoded = CODEC.encode(event, actor=OWNER)
        store_records.append(Recorded(position, "blob", blob.id_str, encoded.type, encoded.version, encoded.at,
                                      orjson.loads(orjson.dumps(encoded.data)), encoded.class_version))  # fmt: skip
    folded = CODEC.rebuild(store_records)
    taken = take(folded, store_records[-1])
    assert taken is not None
    again = Taken.from_json(orjson.loads(orjson.dumps(taken.to_json())))
    assert again is not None
    restored = restore(Blob, blob.id_str, again)
    assert type(restored) is Blob and state(restored) == state(folded)


def test_a_state_that_is_not_plain_json_is_not_taken() -> None:
    """A schema holds ``SchemaVersion`` objects: JSON would read them back as dicts."""
    schema = Schema.register("essay", OWNER, "1.0.0", {"type": "object"}, None)
    last = recorded(schema.collect_events()[-1], "schema")
    assert take(schema, last) is None
    blob = Blob.create(OWNER, {"n": 1}, None, None, [])
    last = recorded(blob.collect_events()[-1], "blob")
    assert take(blob, last) is not None
    blob.data = {"when": (1, 2)}  # a tuple reads back as a list
    assert take(blob, last) is None


def recorded(event: Any, kind: str, position: int = 1) -> Recorded:
    encoded = CODEC.encode(event, actor=OWNER)
    return Recorded(position, kind, str(event.originator_id), encoded.type, encoded.version, encoded.at, encoded.data,
                    command_id=new_id())  # fmt: skip


async def test_a_long_history_is_loaded_from_its_snapshot_and_the_events_after_it() -> None:
    store, snapshots = MemoryEventStore(), MemorySnapshots()
    blob_id = await blob_with_history(repository(store, snapshots), updates=9)  # 10 events

    first = repository(store, snapshots)  # another process, nothing kept
    loaded = await first.get(Blob, blob_id)
    assert loaded is not None and first.snapshot_hits == 0 and first.snapshots_kept == 1
    assert ("blob", blob_id) in snapshots.kept

    await blob_with_updates(store, snapshots, blob_id, 2)  # written after the snapshot, elsewhere
    second = repository(store, snapshots)
    again = await second.get(Blob, blob_id)
    assert again is not None and second.snapshot_hits == 1
    assert again.aggregate.version == 12 and again.aggregate.data == {"n": 12, "text": "x" * 12}
    assert state(again.aggregate) == state(await full_fold(store, blob_id))
    assert again.position == (await store.load("blob", blob_id))[-1].position


async def blob_with_updates(store: MemoryEventStore, snapshots: MemorySnapshots, blob_id: str, count: int) -> None:
    repo = repository(store, snapshots, after=1000)
    for _ in range(count):
        await repo.execute(Blob, blob_id, lambda b: (b.update({"n": b.version + 1, "text": "x" * (b.version + 1)}), b)[1],
                           ctx())  # fmt: skip


async def test_a_command_decided_on_a_snapshot_appends_where_the_log_ends() -> None:
    store, snapshots = MemoryEventStore(), MemorySnapshots()
    blob_id = await blob_with_history(repository(store, snapshots), updates=9)
    await repository(store, snapshots).get(Blob, blob_id)  # keeps the snapshot
    repo = repository(store, snapshots)
    saved = await repo.execute(Blob, blob_id, lambda b: (b.move(BUCKETS[1], BUCKETS[2]), b)[1], ctx())
    assert repo.snapshot_hits == 1
    assert saved.aggregate.version == 11 and saved.aggregate.bucket_ids == [BUCKETS[0], BUCKETS[2]]
    assert state(saved.aggregate) == state(await full_fold(store, blob_id))


async def test_a_snapshot_that_is_not_the_logs_history_is_ignored() -> None:
    """Its last event must still be in the log at its position with its version (a log
    restored from an older backup, a snapshot kept by other code)."""
    store, snapshots = MemoryEventStore(), MemorySnapshots()
    blob_id = await blob_with_history(repository(store, snapshots), updates=9)
    await repository(store, snapshots).get(Blob, blob_id)
    good = Taken.from_json(orjson.loads(snapshots.kept[("blob", blob_id)]))
    assert good is not None
    forged = {**good.state, "data": {"forged": True}}
    for position, version, command_id in (
        (good.position, good.version + 1, good.command_id), (good.position + 100, good.version, good.command_id),
        (good.position - 1, good.version - 2, good.command_id), (good.position, good.version, "another command"),
    ):  # fmt: skip
        snapshots.keep("blob", blob_id, Taken(position, version, command_id, forged))
        repo = repository(store, snapshots)
        loaded = await repo.get(Blob, blob_id)
        assert loaded is not None and repo.snapshot_hits == 0
        assert loaded.aggregate.data == {"n": 9, "text": "x" * 9}


async def test_an_unreadable_snapshot_is_ignored() -> None:
    store, snapshots = MemoryEventStore(), MemorySnapshots()
    blob_id = await blob_with_history(repository(store, snapshots), updates=9)
    await repository(store, snapshots).get(Blob, blob_id)
    good = Taken.from_json(orjson.loads(snapshots.kept[("blob", blob_id)]))
    assert good is not None
    snapshots.kept[("blob", blob_id)] = b'{"position": 3, "version"'
    assert (await repository(store, snapshots).get(Blob, blob_id)).aggregate.version == 10  # type: ignore[union-attr]
    snapshots.keep("blob", blob_id, Taken(good.position, good.version, good.command_id,
                                          {**good.state, "_created_on": "yesterday"}))  # fmt: skip
    repo = repository(store, snapshots)
    loaded = await repo.get(Blob, blob_id)
    assert loaded is not None and loaded.aggregate.version == 10 and repo.snapshot_hits == 0


async def test_short_histories_past_positions_and_other_types_are_not_snapshotted() -> None:
    store, snapshots = MemoryEventStore(), MemorySnapshots()
    blob_id = await blob_with_history(repository(store, snapshots), updates=3)  # 4 events, under 5
    await repository(store, snapshots).get(Blob, blob_id)
    assert snapshots.kept == {}
    long_id = await blob_with_history(repository(store, snapshots), updates=9)
    history = await store.load("blob", long_id)
    repo = repository(store, snapshots)
    past = await repo.get(Blob, long_id, until_position=history[6].position)
    assert past is not None and past.aggregate.version == 7 and snapshots.kept == {}
    await repo.get(Blob, long_id)  # takes the snapshot, at the last event
    assert ("blob", long_id) in snapshots.kept
    past = await repo.get(Blob, long_id, until_position=history[8].position)
    assert past is not None and past.aggregate.version == 9 and repo.snapshot_hits == 0, "folded from the log"
    schema_repo = repository(store, snapshots, after=1)
    saved = await schema_repo.execute(Schema, None, lambda _: Schema.register("essay", OWNER, "1.0.0", {"type": "object"}, None), ctx())
    await repository(store, snapshots, after=1).get(Schema, saved.aggregate.id_str)
    assert ("schema", saved.aggregate.id_str) not in snapshots.kept


async def test_a_past_position_at_or_after_the_snapshot_starts_from_it() -> None:
    """``as_of`` and a retried command's answer: the snapshot, then the events up to the position."""
    store, snapshots = MemoryEventStore(), MemorySnapshots()
    blob_id = await blob_with_history(repository(store, snapshots, after=1000), updates=9)
    snapshot_at = (await store.load("blob", blob_id))[-1].position
    await repository(store, snapshots).get(Blob, blob_id)  # 10 events: a snapshot at the last
    writer = repository(store, snapshots, after=1000)
    for n in range(10, 16):
        await writer.execute(Blob, blob_id, lambda b, n=n: (b.update({"n": n}), b)[1], ctx())
    history = await store.load("blob", blob_id)
    kept = dict(snapshots.kept)
    for until in (snapshot_at, history[12].position, history[-1].position):
        repo = repository(store, snapshots)
        past = await repo.get(Blob, blob_id, until_position=until)
        expected = CODEC.rebuild([r for r in history if r.position <= until])
        assert past is not None and past.position == until and state(past.aggregate) == state(expected)
        assert repo.snapshot_hits == 1 and repo.log_loads == 0
    assert snapshots.kept == kept, "a past state keeps no snapshot"


async def test_a_snapshot_of_history_lost_by_restoring_the_log_from_a_backup_is_ignored() -> None:
    """The restored log reuses the lost events' positions, and the blob's next edits take the
    very positions and versions the snapshot names: only their command ids and times differ."""
    lost, snapshots = MemoryEventStore(), MemorySnapshots()
    writer = repository(lost, snapshots, after=1000)
    created = await writer.execute(Blob, None, lambda _: Blob.create(OWNER, {"n": 0}, None, None, []), ctx())
    blob_id = created.aggregate.id_str
    for n in range(1, 40):
        await writer.execute(Blob, blob_id, lambda b, n=n: (b.update({"n": n, "timeline": "lost"}), b)[1], ctx())
    await repository(lost, snapshots, after=32).get(Blob, blob_id)
    assert Taken.from_json(orjson.loads(snapshots.kept[("blob", blob_id)])).position == 40  # type: ignore[union-attr]

    restored = MemoryEventStore()  # the backup holds the first 35 events
    for record in lost.records[:35]:
        await restored.append("blob", blob_id, NewEvent(record.type, record.version, record.at, record.data,
                                                        record.class_version, record.actor),
                              record.position - 1 if record.position > 1 else 0, record.command_id or new_id())  # fmt: skip
    writer = repository(restored, snapshots, after=1000)
    for n in range(35, 40):
        await writer.execute(Blob, blob_id, lambda b, n=n: (b.update({"n": n, "timeline": "kept"}), b)[1], ctx())
    repo = repository(restored, snapshots, after=1000)
    loaded = await repo.get(Blob, blob_id)
    assert loaded is not None and repo.snapshot_hits == 0
    assert loaded.aggregate.version == 40 and loaded.aggregate.data == {"n": 39, "timeline": "kept"}


async def test_a_book_written_chapter_by_chapter_is_loaded_from_its_snapshot() -> None:
    from domain.book import Book

    store, snapshots = MemoryEventStore(), MemorySnapshots()
    writer = repository(store, snapshots, after=1000)
    created = await writer.execute(Book, None, lambda _: Book.create(OWNER, "Draft", {"genre": "essay"}, []), ctx())
    book_id = created.aggregate.id_str
    for n in range(8):
        await writer.execute(Book, book_id, lambda b, n=n: (b.add_chapter(f"Chapter {n}", "words " * n), b)[1], ctx())
    chapter = (await writer.get(Book, book_id)).aggregate.chapter_ids[3]  # type: ignore[union-attr]
    await writer.execute(Book, book_id, lambda b: (b.edit_chapter(chapter, content="rewritten"), b)[1], ctx())

    await repository(store, snapshots).get(Book, book_id)  # folds 10 events, keeps a snapshot
    assert ("book", book_id) in snapshots.kept
    repo = repository(store, snapshots)
    loaded = await repo.get(Book, book_id)
    assert loaded is not None and repo.snapshot_hits == 1
    whole = CODEC.rebuild(await store.load("book", book_id))
    assert state(loaded.aggregate) == state(whole)
    assert loaded.aggregate.chapter(chapter).content == "rewritten" and loaded.aggregate.size == whole.size  # type: ignore[attr-defined]


async def test_a_processor_updated_again_and_again_is_loaded_from_its_snapshot() -> None:
    """The job runner loads a job's processor for every job it runs; its owner can update it without end."""
    from domain.processor import Processor

    store, snapshots = MemoryEventStore(), MemorySnapshots()
    writer = repository(store, snapshots, after=1000)
    created = await writer.execute(Processor, None, lambda _: Processor.register(
        OWNER, "p", "js-transform", None, None, {"source": "v0"}, [], {}), ctx())
    processor_id = created.aggregate.id_str
    for n in range(1, 12):
        await writer.execute(Processor, processor_id,
                             lambda p, n=n: (p.update(config={"source": f"v{n}"}), p)[1], ctx())
    await repository(store, snapshots).get(Processor, processor_id)  # folds 12 events, keeps a snapshot
    assert ("processor", processor_id) in snapshots.kept
    repo = repository(store, snapshots)
    loaded = await repo.get(Processor, processor_id)
    assert loaded is not None and repo.snapshot_hits == 1
    assert state(loaded.aggregate) == state(CODEC.rebuild(await store.load("processor", processor_id)))
    assert loaded.aggregate.config == {"source": "v11"}  # type: ignore[attr-defined]
