"""An in-memory ``commands.ports.EventStore`` that behaves like the JetStream one.

* Positions are one global sequence starting at 1.
* ``expected_position`` must equal the position of the aggregate's last event
  (0: none yet), else ``ConcurrencyError``; as on JetStream the check comes
  before deduplication, and a retry whose expectation went stale counts as
  done when the subject's last event carries its command id.
* A command id already in the log (same expectation) is a duplicate: nothing
  is appended and the original position comes back with ``duplicate=True``.
* Event data is stored as JSON (orjson round trip), so a non-JSON attribute
  fails here as it would on the wire, and loads never share objects with the
  aggregate that appended them.
* ``load`` answers a page (``limit`` events, ``max_bytes`` of event data, the
  first event always) as the JetStream store does.
* ``available = False`` makes every call raise ``Unavailable``.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator

import orjson

from commands.ports import Appended, Guard
from commands.ports import Unavailable
from domain.errors import ConcurrencyError
from domain.recorded import NewEvent, Recorded


class MemoryEventStore:
    def __init__(self) -> None:
        self.records: list[Recorded] = []
        self._by_subject: dict[tuple[str, str], list[Recorded]] = {}
        self._by_command: dict[str, int] = {}
        self._grown = asyncio.Event()
        self.available = True
        self.appends = 0
        self.guards = True

    def _check_available(self) -> None:
        if not self.available:
            raise Unavailable("the event log is unreachable")

    async def append(
        self,
        aggregate_type: str,
        aggregate_id: str,
        event: NewEvent,
        expected_position: int,
        command_id: str,
        guard: Guard | None = None,
    ) -> Appended:
        self._check_available()
        subject = self._by_subject.get((aggregate_type, aggregate_id), [])
        last = subject[-1] if subject else None
        checked = self._by_subject.get((guard.aggregate_type, guard.aggregate_id), []) if guard else subject
        if guard is not None:
            expected_position = guard.position
        if expected_position != (checked[-1].position if checked else 0):
            if last is not None and last.command_id == command_id:
                return Appended(last.position, duplicate=True)
            raise ConcurrencyError(f"{aggregate_type} {aggregate_id} changed concurrently")
        if command_id in self._by_command:
            return Appended(self._by_command[command_id], duplicate=True)
        payload = orjson.dumps(event.data)
        record = Recorded(
            position=len(self.records) + 1,
            aggregate_type=aggregate_type,
            aggregate_id=aggregate_id,
            type=event.type,
            version=event.version,
            at=event.at,
            data=orjson.loads(payload),
            class_version=event.class_version,
            actor=event.actor,
            command_id=command_id,
            traceparent=event.traceparent,
            size=len(payload),
        )
        self.records.append(record)
        self._by_subject.setdefault((aggregate_type, aggregate_id), []).append(record)
        self._by_command[command_id] = record.position
        self.appends += 1
        self._grown.set()
        return Appended(record.position, size=record.size)

    @staticmethod
    def _copy(record: Recorded) -> Recorded:
        return dataclasses.replace(record, data=orjson.loads(orjson.dumps(record.data)))

    async def load(
        self, aggregate_type: str, aggregate_id: str, *, until_position: int | None = None, from_position: int = 1,
        limit: int | None = None, max_bytes: int | None = None,
    ) -> list[Recorded]:
        """As on JetStream: every event in the bounds, or a page of at most ``limit`` events and
        ``max_bytes`` of event data (the first event always)."""
        self._check_available()
        out: list[Recorded] = []
        used = 0
        for r in self._by_subject.get((aggregate_type, aggregate_id), []):
            if r.position < from_position:
                continue
            if until_position is not None and r.position > until_position:
                break
            if limit is not None and len(out) >= limit:
                break
            if max_bytes is not None and out and used + r.size > max_bytes:
                break
            out.append(self._copy(r))
            used += r.size
        return out

    async def load_page(
        self, aggregate_type: str, aggregate_id: str, *, from_position: int = 1, until_position: int | None = None,
        max_bytes: int, limit: int | None = None,
    ) -> tuple[list[Recorded], bool]:
        page = await self.load(aggregate_type, aggregate_id, from_position=from_position,
                               until_position=until_position, max_bytes=max_bytes, limit=limit)
        after = page[-1].position if page else from_position - 1
        return page, any(r.position > after and (until_position is None or r.position <= until_position)
                         for r in self._by_subject.get((aggregate_type, aggregate_id), []))

    async def has_events_after(self, aggregate_type: str, aggregate_id: str, position: int) -> bool:
        self._check_available()
        events = self._by_subject.get((aggregate_type, aggregate_id), [])
        return bool(events) and events[-1].position > position

    async def last_before(self, aggregate_type: str, aggregate_id: str, position: int) -> Recorded | None:
        self._check_available()
        before = [r for r in self._by_subject.get((aggregate_type, aggregate_id), []) if r.position <= position]
        return self._copy(before[-1]) if before else None

    async def read_range(
        self, aggregate_type: str, from_position: int, until_position: int, *,
        aggregate_id: str | None = None, limit: int = 1000, max_bytes: int | None = None,
    ) -> list[Recorded]:
        self._check_available()
        out: list[Recorded] = []
        taken = 0
        for record in self.records[max(from_position, 1) - 1:max(until_position, 0)]:
            if record.aggregate_type == aggregate_type and aggregate_id in (None, record.aggregate_id):
                out.append(self._copy(record))
                taken += record.size
                if len(out) >= limit or (max_bytes is not None and taken >= max_bytes):
                    break  # like the server: the event that reaches max_bytes is sent, none after it
        return out

    async def read_all(self, from_position: int = 1) -> AsyncIterator[Recorded]:
        """Every event from ``from_position`` on, then live ones; never ends (like the ordered consumer)."""
        position = max(from_position, 1)
        while True:
            self._check_available()
            while position <= len(self.records):
                yield self._copy(self.records[position - 1])
                position += 1
            self._grown.clear()
            await self._grown.wait()

    async def read_span(self, from_position: int, to_position: int) -> AsyncIterator[list[Recorded]]:
        self._check_available()
        position = max(from_position, 1)
        while position <= min(to_position, len(self.records)):
            end = min(position + 999, to_position, len(self.records))
            yield [self._copy(r) for r in self.records[position - 1:end]]
            position = end + 1

    async def open_cursor(self, from_position: int = 1) -> MemoryCursor:
        return MemoryCursor(self, max(from_position, 1))

    async def last_position(self) -> int:
        self._check_available()
        return len(self.records)

    async def event_at(self, position: int) -> Recorded | None:
        self._check_available()
        if 1 <= position <= len(self.records):
            return self._copy(self.records[position - 1])
        return None


class MemoryCursor:
    """``commands.ports.LogCursor`` on the memory store."""

    def __init__(self, store: MemoryEventStore, position: int) -> None:
        self._store = store
        self._position = position

    async def next_batch(self, max_size: int, timeout: float | None) -> list[Recorded]:
        records = self._store.records
        if self._position > len(records):
            self._store._grown.clear()
            try:
                async with asyncio.timeout(timeout):
                    await self._store._grown.wait()
            except TimeoutError:
                return []
        batch = records[self._position - 1:self._position - 1 + max_size]
        self._position += len(batch)
        return [MemoryEventStore._copy(r) for r in batch]

    async def close(self) -> None:
        return None
