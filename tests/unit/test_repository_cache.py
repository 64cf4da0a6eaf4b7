"""The write-side cache: a stale entry (another process wrote since) never wins.

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
    history = await a.history("blob", blob_id)
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
