"""MongoDB's side of the projector runner (``adapters.projector``).

* Each batch's changes are position-guarded writes (``adapters/mongo/changes.py``),
  followed by the projection's checkpoint document in ``projection_checkpoints``;
  where the server offers transactions (a replica set) the writes, the
  checkpoint and the purge of passed tombstones commit together. Without them
  a crash between the writes and the checkpoint replays the batch, and the
  guards make that replay change nothing; tombstones are then kept for a grace
  period (10 leases) after the checkpoint passed them.
* One active runner per projection: a lease in the checkpoint document
  (``leader``, ``lease_until``), renewed by every batch and every idle tick.
  The others wait as standbys and take over once it expires (a leader that
  stops cleanly gives it up at once). The checkpoint is written only by the
  lease holder (the write is filtered on it), so a deposed leader can never
  move it; its late data writes are guarded, so they change nothing either.
  In a transaction a takeover and a batch in flight conflict on the checkpoint
  document and one of them is retried.
* Lease times come from each process's clock: clocks further apart than the
  lease (15 s by default) would let a standby take over early, which costs
  duplicate (guarded, so harmless) writes, not wrong answers.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timedelta, timezone
from typing import Any

from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.errors import DuplicateKeyError

from adapters.mongo.changes import apply_events, purge_tombstones
from adapters.mongo.client import Mongo, is_outage
from adapters.mongo.collections import CHECKPOINTS
from adapters.projector import BeforeCheckpoint, Committed, Projected
from projections.changes import Projection

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


class LostLead(Exception):
    """Another process leads this projection now (the lease expired, or a rebuild took it)."""


def _now() -> datetime:
    return datetime.now(timezone.utc)


async def ensure_checkpoint(mongo: Mongo, name: str, session: AsyncClientSession | None = None) -> None:
    try:
        await mongo.db[CHECKPOINTS].update_one(
            {"_id": name},
            {"$setOnInsert": {"position": 0, "status": "running", "error": None, "error_position": None,
                              "leader": None, "lease_until": EPOCH, "updated_at": _now()}},
            upsert=True, session=session,
        )
    except DuplicateKeyError:  # created at the same moment by another process
        pass


class MongoProjectionStore:
    """Implements ``adapters.projector.ProjectionStore`` on one shared client."""

    kind = "mongo"

    def __init__(self, mongo: Mongo, *, lease_seconds: float = 15.0, owner: str | None = None,
                 tombstone_grace: float | None = None) -> None:
        self._mongo = mongo
        self._lease = lease_seconds
        self._owner = owner or f"runner:{uuid.uuid4()}"
        # Without transactions a deposed leader may still land a batch it began before
        # its lease ran out: tombstones outlive that by far before they are purged.
        self._grace = tombstone_grace if tombstone_grace is not None else 10 * lease_seconds

    def is_outage(self, exc: BaseException) -> bool:
        return isinstance(exc, LostLead) or is_outage(exc)

    @asynccontextmanager
    async def writer(self, projection: Projection) -> AsyncIterator[MongoWriter]:
        writer = MongoWriter(self._mongo, projection, f"{self._owner}:{projection.name}", self._lease, self._grace)
        try:
            yield writer
        finally:
            await writer.release()


class MongoWriter:
    def __init__(self, mongo: Mongo, projection: Projection, owner: str, lease_seconds: float,
                 grace: float) -> None:
        self._mongo = mongo
        self._grace = grace
        self._name = projection.name
        self._tables = projection.tables
        self._owner = owner
        self._lease = lease_seconds
        self._deadline = 0.0  # monotonic time until which this writer holds the lease
        self._checkpoints = mongo.db[CHECKPOINTS]

    def _purge_before(self) -> datetime | None:
        """None in a transaction: the batch cannot be replayed once committed."""
        return None if self._mongo.transactions else _now() - timedelta(seconds=self._grace)

    def _renewed(self) -> dict[str, Any]:
        return {"lease_until": _now() + timedelta(seconds=self._lease)}

    def _hold(self, started: float) -> None:
        # Counted from before the request that renewed it, and a little short of it.
        self._deadline = started + self._lease * 0.8

    async def lead(self) -> bool:
        await ensure_checkpoint(self._mongo, self._name)
        started = time.monotonic()
        taken = await self._checkpoints.update_one(
            {"_id": self._name, "$or": [{"leader": self._owner}, {"lease_until": {"$lt": _now()}}]},
            {"$set": {"leader": self._owner, **self._renewed()}},
        )
        if taken.matched_count:
            self._hold(started)
        return bool(taken.matched_count)

    async def start(self) -> int:
        # A restart (after a fix) retries a halted projection from where it stopped.
        await self._checkpoints.update_one(
            {"_id": self._name, "leader": self._owner},
            {"$set": {"status": "running", "error": None, "error_position": None, "updated_at": _now()}},
        )
        doc = await self._checkpoints.find_one({"_id": self._name})
        position = int(doc["position"]) if doc else 0
        # Tombstones a crash left behind (between a checkpoint and its purge).
        await purge_tombstones(self._mongo.db, self._tables, position, older_than=self._purge_before())
        return position

    async def commit(self, events: list[Projected], before_checkpoint: BeforeCheckpoint | None) -> Committed:
        if not self._mongo.transactions:
            return await self._commit(events, before_checkpoint, None)
        async with self._mongo.client.start_session() as session:
            async with await session.start_transaction():
                return await self._commit(events, before_checkpoint, session)

    async def advance(self, events: list[Projected]) -> Committed:
        """Events that change nothing here: the same guarded checkpoint move as a batch's, no writes."""
        return await self.commit(events, None)

    async def _commit(
        self, events: list[Projected], before_checkpoint: BeforeCheckpoint | None, session: AsyncClientSession | None
    ) -> Committed:
        started = time.monotonic()
        if session is None and started > self._deadline:
            raise LostLead(f"the lease on {self._name} ran out before this batch")
        doc = await self._checkpoints.find_one({"_id": self._name}, session=session)
        if doc is None or doc.get("leader") != self._owner:
            raise LostLead(f"another process leads {self._name}")
        # The checkpoint may have moved under us (a rebuild swapped in collections
        # that are further along): never apply an event twice.
        stored = int(doc["position"])
        events = [e for e in events if e.position > stored]
        if not events:
            return Committed(stored)
        tombstoned = await apply_events(self._mongo.db, events, session=session)
        applied = [e.record for e in events]
        if before_checkpoint is not None:
            maybe = before_checkpoint(applied)
            if maybe is not None:
                await maybe
        last = events[-1].position
        moved = await self._checkpoints.update_one(
            {"_id": self._name, "leader": self._owner},
            {"$max": {"position": last}, "$set": {"updated_at": _now(), **self._renewed()}},
            session=session,
        )
        if not moved.matched_count:
            raise LostLead(f"another process took {self._name} over during a batch")
        self._hold(started)
        if session is not None:
            await purge_tombstones(self._mongo.db, tombstoned, last, session=session)
        else:  # every table: older tombstones come of age while nothing is deleted
            await purge_tombstones(self._mongo.db, self._tables, last, older_than=self._purge_before())
        return Committed(last, applied)

    async def halt(self, position: int, error: str) -> None:
        await self._checkpoints.update_one(
            {"_id": self._name},
            {"$set": {"status": "halted", "error": error, "error_position": position, "updated_at": _now()}},
        )

    async def idle(self) -> None:
        started = time.monotonic()
        renewed = await self._checkpoints.update_one({"_id": self._name, "leader": self._owner},
                                                     {"$set": self._renewed()})
        if not renewed.matched_count:
            raise LostLead(f"another process leads {self._name}")
        self._hold(started)

    async def release(self) -> None:
        """Give the lease up, so that a standby takes over at once (best effort)."""
        if self._deadline == 0.0:
            return
        with contextlib.suppress(Exception):
            async with asyncio.timeout(2):
                await self._checkpoints.update_one({"_id": self._name, "leader": self._owner},
                                                   {"$set": {"lease_until": EPOCH}})
