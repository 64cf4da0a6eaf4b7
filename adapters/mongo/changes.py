"""Applying projection changes to MongoDB collections, each write guarded by position.

Every document carries ``position``, the log position of the last event applied
to it, and ``_v``, that position and the index of the change among the event's
changes (an event may change one document twice) in one number:
``position * 2**20 + index``. A change of the event at ``P`` writes a document
only while the document's ``_v`` is below its own, so a replayed batch (a crash
between the writes and the checkpoint, a deposed leader finishing late)
changes nothing: the step that Eventuous's Mongo projector leaves as a TODO.
One field rather than ``$or`` on two keeps every guarded write a lookup by
``_id`` (SecantusDB scans the whole collection for an ``$or``).

A ``Delete`` leaves a tombstone (the ``_id``, ``_deleted: true``, its position
and the server's time, nothing else) instead of removing the document, so
that replaying an older ``Upsert`` cannot bring a deleted document back;
queries skip tombstones, and the projector removes those its checkpoint has
passed (``purge_tombstones``): in the same transaction where there is one (a
fenced transaction is never replayed), else once they are also older than a
grace period, long enough for a deposed leader's late batch to have landed.
An ``Upsert`` over an older tombstone makes a fresh document of it, as an
INSERT after a DELETE does: two writes per upsert (the guarded ``$set``, and a
``$setOnInsert`` for a document that is not there).

Changes to different collections commute (the read model has no references
between them), so each collection's changes go in one ordered ``bulk_write``:
one round trip per collection and batch.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, Protocol

from pymongo import UpdateMany, UpdateOne
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase

from adapters.mongo.collections import doc_id, is_key, spec
from adapters.mongo.encoding import encode_row, to_bson
from domain.recorded import Recorded
from projections.changes import Change, Delete, Update, Upsert

LIVE: dict[str, Any] = {"_deleted": {"$exists": False}}

Operation = UpdateOne | UpdateMany


class EventChanges(Protocol):
    """One event's changes (``adapters.projector.Projected``)."""

    @property
    def record(self) -> Recorded: ...

    @property
    def changes(self) -> list[Change]: ...


CHANGES_PER_EVENT = 2**20


def version(position: int, index: int) -> int:
    """Change ``index`` of the event at ``position`` as one number that sorts as the pair does."""
    if not 0 <= index < CHANGES_PER_EVENT:
        raise ValueError(f"an event with more than {CHANGES_PER_EVENT} changes")
    return position * CHANGES_PER_EVENT + index


def _older(position: int, index: int) -> dict[str, Any]:
    """Documents last written before change ``index`` of the event at ``position``."""
    return {"_v": {"$lt": version(position, index)}}


def _where(table: str, where: dict[str, Any]) -> dict[str, Any]:
    if is_key(table, where):
        return {"_id": doc_id(table, where)}
    return {column: to_bson(value) for column, value in where.items()}


def operations(change: Change, position: int, index: int) -> list[Operation]:
    """The guarded writes of one change of the event at ``position``."""
    stamp = {"position": position, "_v": version(position, index)}
    older = _older(position, index)
    if isinstance(change, Upsert):
        if tuple(change.key) != spec(change.table).key:
            raise ValueError(f"an upsert of {change.table} by {change.key}, whose key is {spec(change.table).key}")
        _id = doc_id(change.table, change.row)
        doc = {**encode_row(change.row), **stamp}
        return [
            # over an older document, or an older tombstone (which holds nothing else: a fresh one)
            UpdateOne({"_id": _id, **older}, {"$set": doc, "$unset": {"_deleted": "", "_deleted_at": ""}}),
            UpdateOne({"_id": _id}, {"$setOnInsert": doc}, upsert=True),  # where there is none
        ]
    if isinstance(change, Update):
        if not change.fields:
            return []
        return [UpdateMany({**_where(change.table, change.where), **LIVE, **older},
                           {"$set": {**encode_row(change.fields), **stamp}})]
    if isinstance(change, Delete):
        # The tombstone keeps its key, position and time only, so that an Upsert over it
        # starts afresh and no query by another column finds it.
        tombstone = {"_id": "$_id", "_deleted": True, **stamp, "_deleted_at": "$$NOW"}
        return [UpdateMany({**_where(change.table, change.where), **LIVE, **older}, [{"$replaceWith": tombstone}])]
    raise TypeError(f"unknown change {change!r}")  # pragma: no cover - the Change union is closed


def by_collection(events: Iterable[EventChanges]) -> dict[str, list[Operation]]:
    ops: dict[str, list[Operation]] = {}
    for event in events:
        for index, change in enumerate(event.changes):
            ops.setdefault(change.table, []).extend(operations(change, event.record.position, index))
    return ops


async def apply_events(
    db: AsyncDatabase, events: Sequence[EventChanges], *, suffix: str = "", session: AsyncClientSession | None = None
) -> set[str]:
    """Apply the events' changes; returns the tables that may hold new tombstones.
    ``suffix`` targets the fresh collections of a rebuild."""
    tombstoned: set[str] = set()
    for table, ops in by_collection(events).items():
        if ops:
            await db[table + suffix].bulk_write(ops, ordered=True, session=session)
    for event in events:
        tombstoned.update(c.table for c in event.changes if isinstance(c, Delete))
    return tombstoned


async def purge_tombstones(
    db: AsyncDatabase, tables: Iterable[str], through: int, *, older_than: datetime | None = None,
    suffix: str = "", session: AsyncClientSession | None = None,
) -> None:
    """Remove the tombstones at or before ``through`` (no replay reaches back past a
    checkpoint), and made before ``older_than`` when given."""
    query: dict[str, Any] = {"_deleted": True, "position": {"$lte": through}}
    if older_than is not None:
        query["_deleted_at"] = {"$lt": older_than}
    for table in tables:
        await db[table + suffix].delete_many(query, session=session)
