"""Blue/green rebuild of a projection's collections from the log.

Replays every event into fresh ``<collection>__rebuild`` copies while the live
collections keep answering; then takes the projection's lease from the live
runner (which waits as a standby meanwhile: its checkpoint writes are fenced
by the lease), brings the copies up to the live checkpoint, renames them into
place (``renameCollection`` with ``dropTarget``), sets the checkpoint and
gives the lease back. A rename is atomic per collection, not across the two
collections of one projection, so for a moment a query may read one new and
one old collection: both hold the same rows, since the copies were brought up
to the live checkpoint first.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta, timezone

from adapters.collection import collecting_rarely
from adapters.mongo.changes import apply_events, purge_tombstones
from adapters.mongo.client import Mongo
from adapters.mongo.collections import CHECKPOINTS, ensure_indexes
from adapters.mongo.projector import EPOCH, ensure_checkpoint
from adapters.projector import Projected
from commands.ports import EventStore
from domain.base import EventCodec
from projections.changes import Projection

SUFFIX = "__rebuild"

Progress = Callable[[int, int], None]  # (position reached, target position)


class _Lease:
    def __init__(self, mongo: Mongo, name: str, seconds: float) -> None:
        self._checkpoints = mongo.db[CHECKPOINTS]
        self._name = name
        self._seconds = seconds
        self.owner = f"rebuild:{uuid.uuid4()}"

    def _until(self) -> datetime:
        return datetime.now(timezone.utc) + timedelta(seconds=self._seconds)

    async def take(self) -> None:
        """Unconditionally: the live runner's next batch finds itself deposed and waits."""
        await self._checkpoints.update_one({"_id": self._name},
                                           {"$set": {"leader": self.owner, "lease_until": self._until()}})

    async def renew(self) -> None:
        renewed = await self._checkpoints.update_one({"_id": self._name, "leader": self.owner},
                                                     {"$set": {"lease_until": self._until()}})
        if not renewed.matched_count:
            raise RuntimeError(f"another process took {self._name} over during its rebuild")

    async def give_back(self) -> None:
        await self._checkpoints.update_one({"_id": self._name, "leader": self.owner},
                                           {"$set": {"lease_until": EPOCH}})


async def _replay(
    mongo: Mongo,
    projection: Projection,
    store: EventStore,
    codec: EventCodec,
    start: int,
    end: int,
    progress: Progress | None,
    lease: _Lease | None = None,
) -> None:
    async with contextlib.aclosing(store.read_span(start, end)) as span:
        async for batch in span:
            events = [Projected(r, projection.changes(codec.upcast(r))) for r in batch]
            tombstoned = await apply_events(mongo.db, events, suffix=SUFFIX)
            await purge_tombstones(mongo.db, tombstoned, batch[-1].position, suffix=SUFFIX)
            if lease is not None:
                await lease.renew()
            if progress:
                progress(batch[-1].position, end)


async def rebuild(
    projection: Projection,
    *,
    mongo: Mongo,
    store: EventStore,
    codec: EventCodec,
    progress: Progress | None = None,
    lease_seconds: float = 15.0,
) -> int:
    """Rebuild and swap in; returns the position the swapped collections reflect."""
    db = mongo.db
    await ensure_checkpoint(mongo, projection.name)
    for table in projection.tables:
        await db.drop_collection(table + SUFFIX)
        await db.create_collection(table + SUFFIX)
    await ensure_indexes(db, projection.tables, SUFFIX)
    target = await store.last_position()
    with collecting_rarely():
        await _replay(mongo, projection, store, codec, 1, target, progress)

    lease = _Lease(mongo, projection.name, lease_seconds)
    await lease.take()
    try:
        doc = await db[CHECKPOINTS].find_one({"_id": projection.name})
        live = int(doc["position"]) if doc else 0
        if live > target:
            await _replay(mongo, projection, store, codec, target + 1, live, progress, lease)
        reached = max(live, target)
        for table in projection.tables:
            await db[table + SUFFIX].rename(table, dropTarget=True)
        await lease.renew()
        await db[CHECKPOINTS].update_one(
            {"_id": projection.name, "leader": lease.owner},
            {"$set": {"position": reached, "updated_at": datetime.now(timezone.utc)}},
        )
    finally:
        await lease.give_back()
    return reached
