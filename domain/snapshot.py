"""An aggregate's state at one position of the log, to load it without folding every event.

A snapshot is only a shortcut: the log stays the truth. One is taken from an
aggregate folded from the log, never from one a command changed in memory,
and only when its state is plain JSON (objects with text keys, arrays, text,
numbers, booleans, null) besides the library's own id, version and
timestamps, so that writing it as JSON and reading it back gives an equal
state. An aggregate holding objects turns them into JSON and back itself
(``InkAggregate.snapshot_state``: a book's chapters); a state holding
anything else (a tuple, a set, a date) is not taken.

The library's ``Snapshot`` does the taking and the restoring, including its
convention for an aggregate class's ``class_version`` and upcasters.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar
from uuid import UUID

from eventsourcing.domain import get_topic

from domain.base import InkAggregate
from domain.recorded import Recorded

A = TypeVar("A", bound=InkAggregate)

_TIMES = ("_created_on", "_modified_on")


@dataclass(frozen=True, slots=True)
class Taken:
    """What a snapshot holds: the position and version of the aggregate's last
    event, and its state as plain JSON (timestamps as ISO 8601 text)."""

    position: int
    version: int
    command_id: str | None
    """The last event's command id: with its time, what tells that event from another one
    that took its position after the log was restored from a backup."""
    state: dict[str, Any]
    size: int = field(default=0, compare=False)
    """Bytes of the snapshot as stored (0 when unknown): what a cache weighs it at."""

    def to_json(self) -> dict[str, Any]:
        return {"position": self.position, "version": self.version, "command_id": self.command_id,
                "state": self.state}  # fmt: skip

    def taken_after(self, last: Recorded) -> bool:
        """Whether ``last``, read from the log at this snapshot's position, is the very event the
        snapshot was taken after: same position, version, command id and time."""
        return (
            last.position == self.position and last.version == self.version and last.command_id == self.command_id
            and last.at == datetime.fromisoformat(self.state["_modified_on"])
        )  # fmt: skip

    @classmethod
    def from_json(cls, value: Any, size: int = 0) -> Taken | None:
        """None unless ``value`` has the shape ``to_json`` gives."""
        if not isinstance(value, dict):
            return None
        position, version, state = value.get("position"), value.get("version"), value.get("state")
        command_id = value.get("command_id")
        if type(position) is not int or type(version) is not int or not isinstance(state, dict):
            return None
        if position < 1 or version < 1 or not (command_id is None or isinstance(command_id, str)):
            return None
        try:
            for key in _TIMES:
                datetime.fromisoformat(state[key])
        except (KeyError, TypeError, ValueError):
            return None
        return cls(position, version, command_id, state, size)


def take(aggregate: InkAggregate, last: Recorded) -> Taken | None:
    """``aggregate`` (folded from the log, ``last`` its last event) as a snapshot,
    or None when its state is not plain JSON."""
    if aggregate.pending_events or last.version != aggregate.version:
        return None
    state = type(aggregate).snapshot_state(dict(type(aggregate).Snapshot.take(aggregate).state))
    times = {k: state.pop(k, None) for k in _TIMES}
    if not all(isinstance(t, datetime) for t in times.values()) or not _plain_json(state):
        return None
    state.update({k: t.isoformat() for k, t in times.items()})  # type: ignore[union-attr]
    return Taken(last.position, aggregate.version, last.command_id, state)


def restore(cls: type[A], aggregate_id: str, taken: Taken) -> A:
    """The aggregate as it was at ``taken.position``. Raises ``ValueError`` when the snapshot
    cannot be read (a corrupted one); the caller then folds the log instead."""
    state = cls.state_from_snapshot(dict(taken.state))
    for key in _TIMES:
        state[key] = datetime.fromisoformat(state[key])
    snapshot = cls.Snapshot(  # type: ignore[call-arg]
        originator_id=UUID(aggregate_id),
        originator_version=taken.version,
        timestamp=state["_modified_on"],
        topic=get_topic(cls),
        state=state,
    )
    aggregate = snapshot.mutate(None)
    if not isinstance(aggregate, cls):
        raise ValueError(f"a snapshot of {cls.__name__} restored as {type(aggregate).__name__}")
    return aggregate


def _plain_json(value: object) -> bool:
    """Whether ``value`` is made only of what JSON writes and reads back as the same Python value."""
    stack = [value]
    while stack:
        item = stack.pop()
        kind = type(item)
        if kind is dict:
            if not all(type(k) is str for k in item):  # type: ignore[union-attr]
                return False
            stack.extend(item.values())  # type: ignore[union-attr]
        elif kind is list:
            stack.extend(item)  # type: ignore[arg-type]
        elif kind is float:
            if not math.isfinite(item):  # type: ignore[arg-type]
                return False
        elif kind not in (str, int, bool) and item is not None:
            return False
    return True
