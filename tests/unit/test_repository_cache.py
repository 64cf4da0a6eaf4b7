"""The repository's caches: a stale entry (another process wrote since) never wins.

Two repositories on one log stand for two API processes."""

from __future__ import annotations

import pytest

from commands.repository import Context, Repository
from domain.base import EventCodec
from domain.blob import Blob
from domain.errors import PreconditionFailed
from domain.ids import new_id
from tests.support.memory_store import MemoryEventStore

CODEC = EventCodec([Blob])
OWNER = new_id()


def ctx() -> Context:
    return Context(actor=OWNER, command_id=new_id())


def update(data: object, expected_version: int | None = None):  # type: ignore[no-untyped-def]
    def decide(blob: Blob | None) -> Blob:
        assert blob is not None
        if expected_version is not None and blob.version != expected_version:
            raise PreconditionFailed(f"at {blob.version}")
        blob.update(data)
        return blob

    return decide


async def test_a_stale_cached_aggregate_is_reloaded_and_the_command_succeeds() -> None:
    store = MemoryEventStore()
    a, b = Repository(store, CODEC), Repository(store, CODEC)
    created = await a.execute(Blob, None, lambda _: Blob.create(OWNER, {"n": 0}, None, None, []), ctx())
    blob_id = created.aggregate.id_str
    await a.execute(Blob, blob_id, update({"n": 1}), ctx())  # a now caches version 2
    await b.execute(Blob, blob_id, update({"n": 2}), ctx())  # b writes version 3 behind a's back
    hits = a.cache_hits
    third = await a.execute(Blob, blob_id, update({"n": 3}), ctx())
    assert a.cache_hits == hits + 1, "the cached copy was tried first"
    assert third.aggregate.version == 4 and third.aggregate.data == {"n": 3}
    history = await store.load("blob", blob_id)
    assert [r.data.get("data") for r in history[1:]] == [{"n": 1}, {"n": 2}, {"n": 3}]


async def test_if_match_is_checked_against_the_log_not_a_stale_cache() -> None:
    store = MemoryEventStore()
    a, b = Repository(store, CODEC), Repository(store, CODEC)
    created = await a.execute(Blob, None, lambda _: Blob.create(OWNER, {"n": 0}, None, None, []), ctx())
    blob_id = created.aggregate.id_str
    await b.execute(Blob, blob_id, update({"n": 1}), ctx())  # version 2, unknown to a's cache
    saved = await a.execute(Blob, blob_id, update({"n": 2}, expected_version=2), ctx())
    assert saved.aggregate.version == 3
    with pytest.raises(PreconditionFailed):
        await a.execute(Blob, blob_id, update({"n": 3}, expected_version=2), ctx())


async def test_the_cache_holds_at_most_its_byte_budget_and_never_an_aggregate_heavier_than_it() -> None:
    store = MemoryEventStore()
    repo = Repository(store, CODEC, cache_bytes=64 * 1024)
    ids = []
    for _ in range(10):  # ten blobs of ~20 KB: about three fit
        saved = await repo.execute(Blob, None, lambda _: Blob.create(OWNER, "x" * 20_000, None, None, []), ctx())
        ids.append(saved.aggregate.id_str)
        assert repo.cached_bytes <= 64 * 1024
    assert 0 < repo.cached_bytes
    hits = repo.cache_hits
    await repo.execute(Blob, ids[-1], update("y"), ctx())  # the newest is still cached
    await repo.execute(Blob, ids[0], update("y"), ctx())  # the oldest was evicted: loaded from the log
    assert repo.cache_hits == hits + 1

    heavy = await repo.execute(Blob, None, lambda _: Blob.create(OWNER, "z" * 100_000, None, None, []), ctx())
    hits = repo.cache_hits
    again = await repo.execute(Blob, heavy.aggregate.id_str, update("w"), ctx())
    assert repo.cache_hits == hits, "an aggregate heavier than the budget is never cached"
    assert again.aggregate.data == "w" and repo.cached_bytes <= 64 * 1024


async def test_get_answers_what_another_process_wrote_since_it_last_read() -> None:
    store = MemoryEventStore()
    a, b = Repository(store, CODEC), Repository(store, CODEC)
    created = await a.execute(Blob, None, lambda _: Blob.create(OWNER, {"n": 0}, None, None, []), ctx())
    blob_id = created.aggregate.id_str
    first = await a.get(Blob, blob_id)
    again = await a.get(Blob, blob_id)
    assert first is not None and again is not None
    assert again.aggregate is first.aggregate and a.read_hits == 1, "nothing written since: the kept copy"

    await b.execute(Blob, blob_id, update({"n": 1}), ctx())  # another process writes
    fresh = await a.get(Blob, blob_id)
    assert fresh is not None and fresh.aggregate.version == 2 and fresh.aggregate.data == {"n": 1}
    assert first.aggregate.version == 1 and first.aggregate.data == {"n": 0}, "what a caller holds never changes"
    assert a.read_hits == 1

    def delete(blob: Blob | None) -> Blob:
        assert blob is not None
        blob.delete()
        return blob

    await b.execute(Blob, blob_id, delete, ctx())
    gone = await a.get(Blob, blob_id)
    assert gone is not None and gone.aggregate.deleted


async def test_what_get_hands_out_is_never_the_copy_commands_decide_on() -> None:
    store = MemoryEventStore()
    repo = Repository(store, CODEC)
    created = await repo.execute(Blob, None, lambda _: Blob.create(OWNER, {"n": 0}, None, None, []), ctx())
    blob_id = created.aggregate.id_str
    read = await repo.get(Blob, blob_id)
    assert read is not None and read.aggregate is not created.aggregate

    async def decide(blob: Blob | None) -> Blob:
        assert blob is not None
        blob.update({"n": 1})  # the write-side copy changes in place, before its append
        now = await repo.get(Blob, blob_id)  # a reader meanwhile sees only what the log holds
        assert now is not None and now.aggregate.data == {"n": 0} and now.aggregate.version == 1
        return blob

    await repo.execute(Blob, blob_id, decide, ctx())
    assert read.aggregate.data == {"n": 0}
    after = await repo.get(Blob, blob_id)
    assert after is not None and after.aggregate.data == {"n": 1} and after.aggregate.version == 2


async def test_a_read_at_a_past_position_is_not_the_kept_copy() -> None:
    store = MemoryEventStore()
    repo = Repository(store, CODEC)
    created = await repo.execute(Blob, None, lambda _: Blob.create(OWNER, {"n": 0}, None, None, []), ctx())
    blob_id = created.aggregate.id_str
    await repo.execute(Blob, blob_id, update({"n": 1}), ctx())
    assert (await repo.get(Blob, blob_id)).aggregate.version == 2  # type: ignore[union-attr]
    past = await repo.get(Blob, blob_id, until_position=created.position)
    assert past is not None and past.aggregate.version == 1 and past.aggregate.data == {"n": 0}
