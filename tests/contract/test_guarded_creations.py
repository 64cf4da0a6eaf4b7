"""Creations that depend on a bucket are appended only while the bucket is as it was checked,
against a real nats-server.

A blob filed in a bucket, and a bucket made under a parent, used to be checked (the bucket live
and the author's) and then appended in a second step: a delete landing in between left a blob in
a deleted bucket, or a bucket under a deleted parent, for good. Now the append carries the
bucket's last position as its guard (``commands.ports.Guard``; the log checks it), so the race
ends in a 404 instead. The checks run in one process (``mine``) while another process
(``theirs``, a repository of its own) deletes, renames or moves the bucket exactly between the
check and the append, which the test arranges by hooking the first process's store.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from adapters.jetstream.event_store import JetStreamEventStore
from commands.blobs import BlobHandlers, CreateBlob
from commands.buckets import BucketHandlers, CreateBucket, DeleteBucket, UpdateBucket
from commands.ports import Appended, Guard
from commands.repository import Context, Repository
from domain.blob import Blob
from domain.errors import NotFound
from domain.ids import new_id
from domain.recorded import NewEvent
from tests.unit.test_repository_folds import CODEC, OWNER


class _Empty:
    """Every bucket counts as empty (the delete's read-model check is not what is tested here)."""

    async def is_empty(self, bucket_id: str) -> bool:
        return True


class HookedStore:
    """The first process's store: runs ``before`` (once) just before a creation of ``kind`` is
    appended, after its checks; counts the round trips that ask whether a kept copy is current."""

    def __init__(self, store: JetStreamEventStore) -> None:
        self._store = store
        self.before: tuple[str, Callable[[], Awaitable[Any]]] | None = None
        self.freshness_checks = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    async def has_events_after(self, aggregate_type: str, aggregate_id: str, position: int) -> bool:
        self.freshness_checks += 1
        return await self._store.has_events_after(aggregate_type, aggregate_id, position)

    async def append(self, aggregate_type: str, aggregate_id: str, event: NewEvent, expected_position: int,
                     command_id: str, guard: Guard | None = None) -> Appended:
        if self.before is not None and self.before[0] == aggregate_type:
            action, self.before = self.before[1], None
            await action()
        return await self._store.append(aggregate_type, aggregate_id, event, expected_position, command_id,
                                        guard=guard)


def ctx() -> Context:
    return Context(actor=OWNER, command_id=new_id())


@pytest.fixture
def processes(private_store: JetStreamEventStore) -> tuple[HookedStore, BlobHandlers, BucketHandlers, BucketHandlers]:
    hooked = HookedStore(private_store)
    mine = Repository(hooked, CODEC)  # type: ignore[arg-type]
    theirs = Repository(private_store, CODEC)
    no_schemas: Any = None
    return (hooked, BlobHandlers(mine, no_schemas, no_schemas), BucketHandlers(mine, _Empty()),
            BucketHandlers(theirs, _Empty()))


async def test_a_blob_filed_in_a_bucket_deleted_between_the_check_and_the_append_is_refused(
        private_store: JetStreamEventStore, processes: tuple[HookedStore, BlobHandlers, BucketHandlers, BucketHandlers],
) -> None:
    hooked, blobs, my_buckets, their_buckets = processes
    bucket = (await my_buckets.create(CreateBucket("shelf", "collection"), ctx())).aggregate.id_str
    filed = await blobs.create(CreateBlob(data={"n": 1}, bucket_ids=[bucket]), ctx())
    assert filed.aggregate.bucket_ids == [bucket]

    hooked.before = ("blob", lambda: their_buckets.delete(DeleteBucket(bucket), ctx()))
    with pytest.raises(NotFound):
        await blobs.create(CreateBlob(data={"n": 2}, bucket_ids=[bucket]), ctx())
    assert hooked.before is None, "the delete ran between the check and the append"
    last = await private_store.last_position()
    deleted = await private_store.event_at(last)
    assert deleted is not None and deleted.type == "Bucket.Deleted", "no blob was filed after the delete"


async def test_a_bucket_made_under_a_parent_deleted_meanwhile_is_refused(
        private_store: JetStreamEventStore, processes: tuple[HookedStore, BlobHandlers, BucketHandlers, BucketHandlers],
) -> None:
    hooked, _, my_buckets, their_buckets = processes
    parent = (await my_buckets.create(CreateBucket("parent", "collection"), ctx())).aggregate.id_str
    await my_buckets.create(CreateBucket("child", "collection", parent), ctx())

    hooked.before = ("bucket", lambda: their_buckets.delete(DeleteBucket(parent), ctx()))
    with pytest.raises(NotFound):
        await my_buckets.create(CreateBucket("orphan", "collection", parent), ctx())
    assert hooked.before is None
    last = await private_store.event_at(await private_store.last_position())
    assert last is not None and (last.type, last.aggregate_id) == ("Bucket.Deleted", parent)


async def test_a_bucket_renamed_or_moved_meanwhile_still_takes_the_blob(
        private_store: JetStreamEventStore, processes: tuple[HookedStore, BlobHandlers, BucketHandlers, BucketHandlers],
) -> None:
    """A change that keeps the bucket live is no reason to refuse: the creation checks it again and lands."""
    hooked, blobs, my_buckets, their_buckets = processes
    bucket = (await my_buckets.create(CreateBucket("shelf", "collection"), ctx())).aggregate.id_str
    other = (await my_buckets.create(CreateBucket("other", "collection"), ctx())).aggregate.id_str
    await blobs.create(CreateBlob(data={}, bucket_ids=[bucket]), ctx())

    hooked.before = ("blob", lambda: their_buckets.update(UpdateBucket(bucket, name="renamed", parent_id=other), ctx()))
    saved = await blobs.create(CreateBlob(data={"n": 3}, bucket_ids=[bucket]), ctx())
    assert hooked.before is None
    stored = await private_store.load(Blob.TYPE, saved.aggregate.id_str)
    assert [r.type for r in stored] == ["Blob.Created"] and stored[0].data["bucket_ids"] == [bucket]


async def test_a_filed_creation_asks_the_log_nothing_about_a_bucket_it_keeps(
        processes: tuple[HookedStore, BlobHandlers, BucketHandlers, BucketHandlers],
) -> None:
    """The guard is the check that the kept bucket is current: no round trip before the append."""
    hooked, blobs, my_buckets, _ = processes
    bucket = (await my_buckets.create(CreateBucket("shelf", "collection"), ctx())).aggregate.id_str
    await blobs.create(CreateBlob(data={}, bucket_ids=[bucket]), ctx())  # reads and keeps the bucket
    hooked.freshness_checks = 0
    for n in range(5):
        await blobs.create(CreateBlob(data={"n": n}, bucket_ids=[bucket]), ctx())
    assert hooked.freshness_checks == 0


async def test_on_a_store_that_does_not_guard_the_bucket_is_checked_on_the_log(
        private_store: JetStreamEventStore) -> None:
    """A replicated stream (a cluster) runs without guards: a filed creation then reads the bucket
    from the log first, as it did before guards, and appends unguarded."""
    private_store.guards = False
    hooked = HookedStore(private_store)
    repository = Repository(hooked, CODEC)  # type: ignore[arg-type]
    no_schemas: Any = None
    blobs, buckets = BlobHandlers(repository, no_schemas, no_schemas), BucketHandlers(repository, _Empty())
    bucket = (await buckets.create(CreateBucket("shelf", "collection"), ctx())).aggregate.id_str
    child = await buckets.create(CreateBucket("child", "collection", bucket), ctx())
    assert child.aggregate.parent_id == bucket
    await blobs.create(CreateBlob(data={}, bucket_ids=[bucket]), ctx())
    hooked.freshness_checks = 0
    saved = await blobs.create(CreateBlob(data={"n": 1}, bucket_ids=[bucket]), ctx())
    assert hooked.freshness_checks == 1 and saved.aggregate.bucket_ids == [bucket]
