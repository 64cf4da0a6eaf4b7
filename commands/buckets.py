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
from typing import Final, Protocol

from domain.bucket import MAX_DEPTH, Bucket
from domain.errors import Conflict, ConcurrencyError, DomainError, NotFound
from domain.ids import is_id

from commands.authorization import changeable, require_actor
from commands.repository import Context, Repository, Saved


class BucketContents(Protocol):
    """Whether a bucket holds nothing: no blobs, no child buckets."""

    async def is_empty(self, bucket_id: str) -> bool: ...


class _Keep(enum.Enum):
    KEEP = "keep"


KEEP: Final = _Keep.KEEP
"""``parent_id`` not given: the bucket stays where it is (None moves it to the root)."""


async def owned_bucket(
    repository: Repository, ctx: Context, bucket_id: str, expected_version: int | None = None
) -> Bucket:
    """A live bucket of the acting user, read from the log (not a read model)."""
    if not is_id(bucket_id):
        raise NotFound(f"bucket {bucket_id}")
    saved = await repository.get(Bucket, bucket_id)
    return changeable(ctx.actor, "bucket", bucket_id, saved.aggregate if saved else None, expected_version)


class BucketCommands:
    def __init__(self, repository: Repository, contents: BucketContents) -> None:
        self._repo = repository
        self._contents = contents

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

    async def create(self, ctx: Context, name: str, type: str, parent_id: str | None = None) -> Saved[Bucket]:
        owner_id = require_actor(ctx.actor)
        lineage = await self._lineage(ctx, parent_id) if parent_id is not None else []
        return await self._repo.execute(
            Bucket, None, lambda _: Bucket.create(owner_id, name, type, parent_id, lineage), ctx
        )

    async def update(
        self,
        ctx: Context,
        bucket_id: str,
        name: str | None = None,
        parent_id: str | None | _Keep = KEEP,
        expected_version: int | None = None,
    ) -> Saved[Bucket]:
        await owned_bucket(self._repo, ctx, bucket_id, expected_version)
        lineage: list[str] = []
        if isinstance(parent_id, str):
            # Moving under itself is refused by the aggregate before any lookup.
            lineage = [bucket_id] if parent_id == bucket_id else await self._lineage(ctx, parent_id)

        def decide(current: Bucket | None) -> Bucket:
            bucket = changeable(ctx.actor, "bucket", bucket_id, current, expected_version)
            new_parent = bucket.parent_id if isinstance(parent_id, _Keep) else parent_id
            bucket.update(bucket.name if name is None else name, new_parent, lineage)
            return bucket

        return await self._repo.execute(Bucket, bucket_id, decide, ctx)

    async def delete(self, ctx: Context, bucket_id: str, expected_version: int | None = None) -> Saved[Bucket]:
        try:
            return await self._delete(ctx, bucket_id, expected_version)
        except DomainError:
            # a retry (same Idempotency-Key) of a delete that already landed answers like the first
            if (first := await self._repo.replayed(Bucket, bucket_id, ctx)) is not None:
                return first
            raise

    async def _delete(self, ctx: Context, bucket_id: str, expected_version: int | None) -> Saved[Bucket]:
        loaded = await owned_bucket(self._repo, ctx, bucket_id, expected_version)
        if not await self._contents.is_empty(bucket_id):
            raise Conflict("the bucket still holds blobs or child buckets")

        def decide(current: Bucket | None) -> Bucket:
            bucket = changeable(ctx.actor, "bucket", bucket_id, current, expected_version)
            if bucket.version != loaded.version:
                raise ConcurrencyError("the bucket changed while its contents were checked")
            bucket.delete()
            return bucket

        return await self._repo.execute(Bucket, bucket_id, decide, ctx)
