"""Aggregate base and the event codec.

Aggregates are ``eventsourcing.domain`` aggregates: a plain method checks the
invariants, then calls exactly one ``@event`` method whose body only changes
state (it runs again on every replay). The codec turns their events into the
log's envelope and back, applying upcasters by class version on the way in,
with the library's own convention (``class_version`` and
``upcast_vN_vM(state)`` static methods on the event class).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from datetime import datetime
from typing import Any, ClassVar, TypeVar
from uuid import UUID

from eventsourcing.domain import Aggregate, get_topic

from domain.ids import uuid7
from domain.recorded import NewEvent, Recorded

_ENVELOPE_FIELDS = frozenset({"originator_id", "originator_version", "timestamp", "originator_topic"})
_APPLYING_AT = "_applying_at"

A = TypeVar("A", bound="InkAggregate")


class InkAggregate(Aggregate):
    """Base of every inkstream aggregate.

    ``TYPE`` is the aggregate's subject token (``ink.<TYPE>.<id>``).
    """

    TYPE: ClassVar[str] = ""

    class Event(Aggregate.Event):
        def mutate(self, aggregate: Any) -> Any:
            """Applies the event as the library does, with its time readable by the ``@event`` body
            (``applying_at``) while the body runs: on a command and on every replay alike."""
            if aggregate is None:
                return super().mutate(aggregate)
            aggregate.__dict__[_APPLYING_AT] = self.timestamp
            try:
                return super().mutate(aggregate)
            finally:
                aggregate.__dict__.pop(_APPLYING_AT, None)

    @property
    def applying_at(self) -> datetime:
        """The time of the event whose ``@event`` body is running: what an aggregate keeps of when a
        change happened (a job's start), as the read model's projection takes it from the event.
        Only inside such a body (``KeyError`` elsewhere); never part of the state."""
        return self.__dict__[_APPLYING_AT]

    @classmethod
    def create_id(cls, *args: Any, **kwargs: Any) -> UUID:
        return uuid7()

    @property
    def id_str(self) -> str:
        return str(self.id)

    @classmethod
    def snapshot_state(cls, state: dict[str, Any]) -> dict[str, Any]:
        """The state (``vars`` of an aggregate, less the library's id and version) as a snapshot
        holds it: plain JSON (``domain/snapshot.py``). Most aggregates hold plain JSON already;
        one holding objects turns them into JSON here and back in ``state_from_snapshot``."""
        return state

    @classmethod
    def state_from_snapshot(cls, state: dict[str, Any]) -> dict[str, Any]:
        """The inverse of ``snapshot_state``; raises ``ValueError``, ``TypeError`` or ``KeyError``
        on a state it cannot read."""
        return state


def event_name(event_cls: type) -> str:
    """``Blob.Created``: the aggregate class and event class names."""
    return event_cls.__qualname__


class EventCodec:
    """Maps domain events to envelopes and back for a fixed set of aggregates."""

    def __init__(self, aggregates: Iterable[type[InkAggregate]]) -> None:
        self._aggregates: dict[str, type[InkAggregate]] = {}
        self._events: dict[str, type[Aggregate.Event]] = {}
        for agg in aggregates:
            if not agg.TYPE:
                raise ValueError(f"{agg.__name__} has no TYPE")
            self._aggregates[agg.TYPE] = agg
            for value in vars(agg).values():
                if isinstance(value, type) and issubclass(value, Aggregate.Event):
                    self._events[event_name(value)] = value

    def aggregate(self, aggregate_type: str) -> type[InkAggregate] | None:
        """The aggregate class of ``aggregate_type`` (``blob``), None when it is none of the codec's."""
        return self._aggregates.get(aggregate_type)

    def knows(self, event_type: str) -> bool:
        """Whether ``event_type`` (``Blob.Created``) is an event of one of the codec's aggregates."""
        return event_type in self._events

    def encode(self, event: Aggregate.Event, *, actor: str | None, traceparent: str | None = None) -> NewEvent:
        state = {k: v for k, v in event.__dict__.items() if k not in _ENVELOPE_FIELDS}
        return NewEvent(
            type=event_name(type(event)),
            version=event.originator_version,
            at=event.timestamp,
            data=state,
            class_version=getattr(type(event), "class_version", 1),
            actor=actor,
            traceparent=traceparent,
        )

    def upcast(self, recorded: Recorded) -> Recorded:
        """The envelope with its data brought to the event class's current version."""
        cls = self._events.get(recorded.type)
        if cls is None:
            return recorded
        target = getattr(cls, "class_version", 1)
        version = recorded.class_version
        if version >= target:
            return recorded
        state = dict(recorded.data)
        while version < target:
            getattr(cls, f"upcast_v{version}_v{version + 1}")(state)
            version += 1
        return dataclasses.replace(recorded, data=state, class_version=version)

    def decode(self, recorded: Recorded) -> Aggregate.Event:
        recorded = self.upcast(recorded)
        cls = self._events[recorded.type]
        kwargs: dict[str, Any] = dict(recorded.data)
        if issubclass(cls, Aggregate.Created):
            kwargs["originator_topic"] = get_topic(self._aggregates[recorded.aggregate_type])
        return cls(
            originator_id=UUID(recorded.aggregate_id),
            originator_version=recorded.version,
            timestamp=recorded.at,
            **kwargs,
        )

    def rebuild(self, records: Iterable[Recorded], start: InkAggregate | None = None) -> InkAggregate | None:
        """The aggregate's state from its history (None when it has none), or from ``start``
        (a snapshot) and the events after it."""
        aggregate = start
        for record in records:
            aggregate = self.decode(record).mutate(aggregate)  # type: ignore[assignment]
        return aggregate
