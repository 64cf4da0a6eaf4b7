"""Each aggregate's state right after an event, for the pushes that carry it.

A push carries the whole blob (or job), but most events carry only what
changed, and a blob created before this process started was never seen here.
So the router keeps recent aggregates (an LRU) built from the very events it
routes, and loads an aggregate from the log, up to the event's position, when
it has not got the version just before: exact whatever the process saw, and a
load (one batched Direct Get) only for a blob it meets for the first time.
A catch-up from ``since`` goes back in time, so it uses its own instance.
"""

from __future__ import annotations

from collections import OrderedDict

from commands.ports import EventStore
from domain.base import EventCodec, InkAggregate
from domain.recorded import Recorded


class AggregateStates:
    def __init__(self, store: EventStore, codec: EventCodec, capacity: int = 10_000) -> None:
        self._store = store
        self._codec = codec
        self._capacity = capacity
        self._cache: OrderedDict[tuple[str, str], InkAggregate] = OrderedDict()
        self.loads = 0

    async def after(self, record: Recorded) -> InkAggregate | None:
        """The aggregate as ``record`` left it; None for an event type the codec does not know."""
        if not self._codec.knows(record.type):
            return None
        key = (record.aggregate_type, record.aggregate_id)
        aggregate = self._next(self._cache.pop(key, None), record)
        if aggregate is None:
            self.loads += 1
            history = await self._store.load(record.aggregate_type, record.aggregate_id, until_position=record.position)
            aggregate = self._codec.rebuild(history)
            if aggregate is None:
                return None
        self._cache[key] = aggregate
        while len(self._cache) > self._capacity:
            self._cache.popitem(last=False)
        return aggregate

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
