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
