"""Each aggregate's state right after an event, for the pushes that carry it.

A push carries the whole blob (or job), but most events carry only what
changed, and a blob created before this process started was never seen here.
So the router keeps recent aggregates (an LRU) built from the very events it
routes, and loads an aggregate from the log, up to the event's position, when
it has not got the version just before: exact whatever the process saw, and a
load (one batched Direct Get) only for a blob it meets for the first time.
A catch-up from ``since`` goes back in time, so it uses its own instance.

The LRU is bounded in entries and in bytes: each state weighs its encoded
size (its attributes as compact JSON, what a blob's data makes up most of),
measured whenever it changes, and the least recently used states leave once
the total passes the budget. A state heavier than the whole budget is not
kept at all (its next event loads it from the log). So many large blobs can
evict each other but never pin more than the budget. Decoded into Python
objects a state takes several times its encoded bytes (about 6x for
JSON-heavy data, as for the write-side cache), which the default allows for.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import orjson

import structlog

from commands.ports import EventStore, Unavailable
from commands.repository import Key, Kept, fold
from domain.base import EventCodec, InkAggregate
from domain.recorded import Recorded
from projections.documents import BlobOut
from projections.pushes import JOB, MIGRATION, Push, blob_pushes, job_pushes, migration_pushes

log = structlog.get_logger("inkstream.live")

MIB = 1024 * 1024


def encoded_size(aggregate: InkAggregate, fallback: int = 0) -> int:
    """The bytes of the aggregate's attributes as compact JSON (what an LRU of states weighs);
    ``fallback`` when they cannot be encoded."""
    try:
        return len(orjson.dumps(vars(aggregate), default=_text, option=orjson.OPT_NON_STR_KEYS))
    except (TypeError, orjson.JSONEncodeError):
        return fallback


def _text(value: Any) -> str:
    return str(value)


Loader = Callable[[str, str, int], Awaitable[InkAggregate | None]]
"""(aggregate type, id, position) → the aggregate as its last event at or before the position left it:
``Repository.state_at`` in a served process (from a snapshot or the rung below: never a fold of a
long history from its first event)."""


class AggregateStates:
    def __init__(self, store: EventStore, codec: EventCodec, capacity: int = 10_000,
                 max_bytes: int = 64 * MIB, load: Loader | None = None) -> None:
        self._store = store
        self._codec = codec
        self._load = load or self._fold
        self._cache = Kept(capacity, max_bytes)  # the repository's LRU, bounded in entries and bytes
        self.loads = 0

    @property
    def bytes(self) -> int:
        """The encoded bytes of every state kept (never more than ``max_bytes``)."""
        return self._cache.bytes

    def __len__(self) -> int:
        return len(self._cache)

    def __contains__(self, key: Key) -> bool:
        return key in self._cache

    async def after(self, record: Recorded) -> InkAggregate | None:
        """The aggregate as ``record`` left it; None for an event type the codec does not know."""
        if not self._codec.knows(record.type):
            return None
        key = (record.aggregate_type, record.aggregate_id)
        kept = self._cache.drop(key)
        aggregate = self._next(kept[0] if kept is not None else None, record)
        if aggregate is None:
            self.loads += 1
            aggregate = await self._load(record.aggregate_type, record.aggregate_id, record.position)
            if aggregate is None:
                return None
        self._cache.put(key, aggregate, record.position, encoded_size(aggregate, fallback=record.size))
        return aggregate

    async def _fold(self, aggregate_type: str, aggregate_id: str, position: int) -> InkAggregate | None:
        """Without a loader: a batch of its events at a time, never its whole history at once."""
        return (await fold(self._store, self._codec, aggregate_type, aggregate_id, until_position=position)).aggregate

    def peek(self, key: Key) -> InkAggregate | None:
        """The state kept for this aggregate, if one is (without making it recent)."""
        entry = self._cache.peek(key)
        return entry[0] if entry is not None else None

    def clear(self) -> None:
        """Hold nothing: every state is read from the log again when it is next needed."""
        self._cache.clear()

    def forget(self, key: Key) -> None:
        """Hold this aggregate's state no longer (a catch-up's blob that is not in its bucket)."""
        self._cache.drop(key)

    def _next(self, known: InkAggregate | None, record: Recorded) -> InkAggregate | None:
        """The state after ``record`` from what is known without I/O, or None."""
        try:
            if known is not None and known.version == record.version - 1:
                return self._codec.decode(record).mutate(known)  # type: ignore[return-value]
            if record.version == 1:
                return self._codec.rebuild([record])
        except Exception:  # noqa: BLE001 - whatever went wrong, the log has the truth
            return None
        return None


OUTAGES = (Unavailable, OSError, TimeoutError)


async def pushes_or_none(record: Recorded, states: AggregateStates) -> list[Push]:
    """``pushes_for``, except that an event that cannot be turned into pushes (corrupt, an
    unknown shape) is logged and skipped instead of stopping everyone's pushes; outages raise."""
    try:
        return await pushes_for(record, states)
    except OUTAGES:
        raise
    except Exception:  # noqa: BLE001
        log.exception("live.push_failed", position=record.position, type=record.type)
        return []


async def pushes_for(record: Recorded, states: AggregateStates) -> list[Push]:
    """The pushes of one event, with the aggregate's state after it (kept current for every blob and job event)."""
    if record.aggregate_type not in ("blob", JOB, MIGRATION):
        return []
    state = await states.after(record)
    if state is None:
        return []
    if record.aggregate_type == "blob":
        return blob_pushes(record, BlobOut.from_aggregate(state))  # type: ignore[arg-type]
    if record.aggregate_type == MIGRATION:
        return migration_pushes(record, state)  # type: ignore[arg-type]
    return job_pushes(record, state)  # type: ignore[arg-type]
