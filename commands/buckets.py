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
  So the delete path reads the read model, and a blob filed into the bucket
  concurrently with its delete can slip past the check (as can two crossing
  moves past the cycle check): the log has no multi-subject transaction.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Final, Protocol

from domain.bucket import MAX_DEPTH, Bucket
from domain.errors import Conflict, NotFound
from domain.ids import is_id

from commands.authorization import changeable, require_actor
from commands.bus import Handler
from commands.repository import Context, Repository, Saved


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
    if not is_id(bucket_id):
        raise NotFound(f"bucket {bucket_id}")
    saved = await repository.get(Bucket, bucket_id)
    return changeable(ctx.actor, "bucket", bucket_id, saved.aggregate if saved else None, None)


class BucketHandlers:
    def __init__(self, repository: Repository, contents: BucketContents) -> None:
        self._repo = repository
        self._contents = contents

    def handlers(self) -> dict[type, Handler]:
        return {CreateBucket: self.create, UpdateBucket: self.update, DeleteBucket: self.delete}

    async def _lineage(self, ctx: Context, parent_id: str) -> list[str]:
        """``parent_id`` and its ancestors up to the root (the parent must be live and owned)."""
        parent = await owned_bucket(self._repo, ctx, parent_id)
        lineage = [parent_id]
        current = parent.parent_id
        while current is not None and current not in lineage and len(lineage) <= MAX_DEPTH:
            saved = await self._repo.get(Bucket, current)
            if saved is None:
                break
            lineage.append(current)
            current = saved.aggregate.parent_id
        return lineage

    async def create(self, cmd: CreateBucket, ctx: Context) -> Saved[Bucket]:
        owner_id = require_actor(ctx.actor)
        lineage = await self._lineage(ctx, cmd.parent_id) if cmd.parent_id is not None else []
        return await self._repo.execute(
            Bucket, None, lambda _: Bucket.create(owner_id, cmd.name, cmd.type, cmd.parent_id, lineage), ctx
        )

    async def update(self, cmd: UpdateBucket, ctx: Context) -> Saved[Bucket]:
        _check_id(cmd.bucket_id)

        async def decide(current: Bucket | None) -> Bucket:
            bucket = changeable(ctx.actor, "bucket", cmd.bucket_id, current, cmd.expected_version)
            lineage: list[str] = []
            if isinstance(cmd.parent_id, str):
                # Moving under itself is refused by the aggregate before any lookup.
                lineage = [cmd.bucket_id] if cmd.parent_id == cmd.bucket_id else await self._lineage(ctx, cmd.parent_id)
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
