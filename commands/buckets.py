"""Bucket commands: create, rename/move (one PATCH, one event), delete.

Two checks need more than the bucket's own history:

* A move must not hang a bucket under its own descendant. The handler walks
  the new parent's ancestors in the log (``Repository.get`` per level, bounded
  by ``domain.bucket.MAX_DEPTH``) and the aggregate refuses if it finds itself.
* A bucket that still holds blobs or child buckets cannot be deleted. Keeping
  counters on the bucket would need a second write (or a policy appending
  events to the bucket) for every blob and child change; instead the handler
  asks the ``BucketContents`` port, which the composition root answers from
  the read model after waiting for it to reach the log's current position.

What a creation checked of a bucket holds until it is appended: a blob filed
in a bucket, or a bucket made under a parent, is appended with the bucket's
last position as its guard (``commands.ports.Guard``, checked by the log), so
a delete (or any change) in between makes the log refuse it and the creation
checks again (``guarded``): a 404 for a bucket deleted meanwhile, never a
blob in a deleted bucket. The guard also stands in for the round trip that
would ask whether the copy of the bucket this process keeps is current.
Guards need a log of one replica (``EventStore.guards``); on a cluster the
bucket is read from the log first and the append is unguarded, as before.

The log checks one subject per append, so two races remain, each within one
owner's own tree: a blob filed in a bucket whose delete had already checked
that it was empty (the delete's check reads the read model, and the blob's
append does not touch the bucket), and two crossing moves (A under B while
B goes under A), each past the other's cycle check, which leaves both
unreachable from the root until one is moved again (the read models' tree
walks stop at a cycle). Only a blob's first bucket guards its creation; the
others are checked as before.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from collections.abc import Awaitable, Callable
from typing import Final, Protocol, TypeVar

from domain.bucket import MAX_DEPTH, Bucket
from domain.errors import ConcurrencyError, Conflict, NotFound
from domain.ids import is_id

from commands.authorization import changeable, require_actor
from commands.bus import Handler
from commands.ports import Guard
from commands.repository import Context, Repository, Saved

A = TypeVar("A")


class BucketContents(Protocol):
    """Whether a bucket holds nothing: no blobs, no child buckets."""

    async def is_empty(self, bucket_id: str) -> bool: ...


class _Keep(enum.Enum):
    KEEP = "keep"


KEEP: Final = _Keep.KEEP
"""``parent_id`` not given: the bucket stays where it is (None moves it to the root)."""


@dataclass(frozen=True, slots=True)
class CreateBucket:
    name: str
    type: str
    parent_id: str | None = None


@dataclass(frozen=True, slots=True)
class UpdateBucket:
    bucket_id: str
    name: str | None = None
    parent_id: str | None | _Keep = KEEP
    expected_version: int | None = None


@dataclass(frozen=True, slots=True)
class DeleteBucket:
    bucket_id: str
    expected_version: int | None = None


async def owned_bucket(repository: Repository, ctx: Context, bucket_id: str) -> Bucket:
    """A live bucket of the acting user, read from the log (not a read model)."""
    return (await _owned(repository, ctx, bucket_id, unchecked=False)).aggregate


async def bucket_guard(repository: Repository, ctx: Context, bucket_id: str, *, unchecked: bool) -> Guard:
    """Check that ``bucket_id`` is a live bucket of the acting user, and answer the ``Guard`` that
    keeps it so until the creation that depends on it is appended. ``unchecked``: from the copy
    this process read last, without a round trip to the log (a stale copy makes the guarded
    append fail, and the caller checks again with ``unchecked=False``)."""
    saved = await _owned(repository, ctx, bucket_id, unchecked=unchecked)
    return Guard(Bucket.TYPE, bucket_id, saved.position)


async def _owned(repository: Repository, ctx: Context, bucket_id: str, *, unchecked: bool) -> Saved[Bucket]:
    if not is_id(bucket_id):
        raise NotFound(f"bucket {bucket_id}")
    saved = await repository.get(Bucket, bucket_id, unchecked=unchecked)
    changeable(ctx.actor, "bucket", bucket_id, saved.aggregate if saved else None, None)
    assert saved is not None
    return saved


async def guarded(attempt: Callable[[bool], Awaitable[Saved[A]]]) -> Saved[A]:
    """``attempt(checked)`` until its guarded append lands: first from what this process keeps
    (``checked`` False), then, when a guarded aggregate changed meanwhile, checked on the log
    again (a bucket renamed, moved or deleted in between). Each retry reads the log's current
    state, so only a guarded aggregate changing again and again ``GUARD_TRIES`` times makes the
    creation give up with the ``ConcurrencyError`` (409)."""
    for tries in range(1, GUARD_TRIES + 1):
        try:
            return await attempt(tries > 1)
        except ConcurrencyError:
            if tries == GUARD_TRIES:
                raise
    raise AssertionError("unreachable")


GUARD_TRIES: Final = 5


class BucketHandlers:
    def __init__(self, repository: Repository, contents: BucketContents) -> None:
        self._repo = repository
        self._contents = contents

    def handlers(self) -> dict[type, Handler]:
        return {CreateBucket: self.create, UpdateBucket: self.update, DeleteBucket: self.delete}

    async def _lineage(self, ctx: Context, parent_id: str, *, unchecked: bool = False) -> tuple[list[str], Guard]:
        """``parent_id`` and its ancestors up to the root (the parent must be live and owned), and the
        guard that keeps the parent as it was read (``unchecked``: see ``bucket_guard``)."""
        saved = await _owned(self._repo, ctx, parent_id, unchecked=unchecked)
        lineage = [parent_id]
        current = saved.aggregate.parent_id
        while current is not None and current not in lineage and len(lineage) <= MAX_DEPTH:
            ancestor = await self._repo.get(Bucket, current)
            if ancestor is None:
                break
            lineage.append(current)
            current = ancestor.aggregate.parent_id
        return lineage, Guard(Bucket.TYPE, parent_id, saved.position)

    async def create(self, cmd: CreateBucket, ctx: Context) -> Saved[Bucket]:
        """Under a parent, appended only while the parent is as it was read (not deleted meanwhile)."""
        owner_id = require_actor(ctx.actor)
        parent_id = cmd.parent_id
        if parent_id is None:
            return await self._repo.execute(
                Bucket, None, lambda _: Bucket.create(owner_id, cmd.name, cmd.type, None, []), ctx)

        async def attempt(checked: bool) -> Saved[Bucket]:
            lineage, guard = await self._lineage(ctx, parent_id, unchecked=not checked)
            return await self._repo.execute(
                Bucket, None, lambda _: Bucket.create(owner_id, cmd.name, cmd.type, parent_id, lineage), ctx, guard
            )

        return await guarded(attempt)

    async def update(self, cmd: UpdateBucket, ctx: Context) -> Saved[Bucket]:
        _check_id(cmd.bucket_id)

        async def decide(current: Bucket | None) -> Bucket:
            bucket = changeable(ctx.actor, "bucket", cmd.bucket_id, current, cmd.expected_version)
            lineage: list[str] = []
            if isinstance(cmd.parent_id, str):
                # Moving under itself is refused by the aggregate before any lookup.
                lineage = [cmd.bucket_id] if cmd.parent_id == cmd.bucket_id else (
                    await self._lineage(ctx, cmd.parent_id))[0]
            new_parent = bucket.parent_id if isinstance(cmd.parent_id, _Keep) else cmd.parent_id
            bucket.update(bucket.name if cmd.name is None else cmd.name, new_parent, lineage)
            return bucket

        return await self._repo.execute(Bucket, cmd.bucket_id, decide, ctx)

    async def delete(self, cmd: DeleteBucket, ctx: Context) -> Saved[Bucket]:
        _check_id(cmd.bucket_id)

        async def decide(current: Bucket | None) -> Bucket:
            bucket = changeable(ctx.actor, "bucket", cmd.bucket_id, current, cmd.expected_version)
            if not await self._contents.is_empty(cmd.bucket_id):
                raise Conflict("the bucket still holds blobs or child buckets")
            bucket.delete()
            return bucket

        return await self._repo.execute(Bucket, cmd.bucket_id, decide, ctx)


def _check_id(bucket_id: str) -> None:
    """An id that is not one of ours cannot exist (and must never reach a subject)."""
    if not is_id(bucket_id):
        raise NotFound(f"bucket {bucket_id}")
