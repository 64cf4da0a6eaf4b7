"""The ``BucketContents`` port on the read model, read only once it has caught up."""

from __future__ import annotations

import asyncpg

from adapters.postgres.queries.content import bucket_is_empty
from adapters.postgres.watch import ProjectionWatch
from commands.ports import EventStore


class ReadModelBucketContents:
    def __init__(self, pool: asyncpg.Pool, watch: ProjectionWatch, store: EventStore, wait_seconds: float) -> None:
        self._pool = pool
        self._watch = watch
        self._store = store
        self._wait = wait_seconds

    async def is_empty(self, bucket_id: str) -> bool:
        position = await self._store.last_position()
        await self._watch.wait(position, ("buckets", "blobs"), self._wait)
        return await bucket_is_empty(self._pool, bucket_id)
