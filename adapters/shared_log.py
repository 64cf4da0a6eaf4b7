"""One reader of the log per process, shared by every subscriber in it.

Projections, the live fan-out and the job triggers all follow the log. Each
used to open its own ordered consumer and decode every event itself; here one
cursor follows the log's tail, decodes each event once, and keeps the most
recent ones in a bounded window. A subscriber (``follow``) reads from that
window while its position is inside it, and reads on its own cursor while it
is behind (a projection catching up at start, a rebuild, a live client
resuming from an old ``since``), switching to the window once it reaches it.
A subscriber that falls behind the window's start simply reads on its own
again: no subscriber ever holds the others back, and memory stays bounded.

Positions in the window are contiguous (the stream is never purged), so a
subscriber's next event is found by arithmetic. A reader that went quiet
while the log moved on (NATS restarted under it) is reopened from where it
stopped; the same holds for a subscriber's own cursor.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque

import structlog

from adapters.cancellation import raise_if_cancelling
from commands.ports import EventStore, LogCursor
from domain.recorded import Recorded

log = structlog.get_logger("inkstream.shared_log")


WINDOW_EVENTS = 20_000
WINDOW_BYTES = 16 * 1024 * 1024
"""The window's bound in the events' stored bytes. Counted in events alone, a user's burst of
half-megabyte blobs (each about 3 MB once decoded) would have been kept 20,000 deep in every
process that follows the log: gigabytes. Decoded events take about six times their stored
bytes, so this holds a process's window near 100 MB at worst; a typical window of small
events stays bounded by ``WINDOW_EVENTS`` well under it."""


class SharedLog:
    def __init__(self, store: EventStore, *, window: int = WINDOW_EVENTS, window_bytes: int = WINDOW_BYTES,
                 idle: float = 1.0) -> None:
        self._store = store
        self._window: deque[Recorded] = deque()
        self._max_events = window
        self._max_bytes = window_bytes
        self._bytes = 0  # the stored bytes of the events in the window
        self._next = 0  # the position the shared cursor reads next; 0 until started
        self._idle = idle
        self._grown = asyncio.Event()

    @property
    def first(self) -> int:
        """The oldest position in the window (``next`` when it is empty)."""
        return self._window[0].position if self._window else self._next

    @property
    def next(self) -> int:
        return self._next

    async def run(self) -> None:
        """Follow the log's tail until cancelled; outages are waited out."""
        self._next = await self._store.last_position() + 1
        delay = 0.1
        while True:
            raise_if_cancelling()
            try:
                await self._follow()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - an outage: wait, then resume where we stopped
                log.warning("shared_log.outage", error=str(exc) or type(exc).__name__, position=self._next)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)

    async def _follow(self) -> None:
        cursor = await self._store.open_cursor(self._next)
        try:
            while True:
                raise_if_cancelling()
                batch = await cursor.next_batch(1000, self._idle)
                if batch:
                    self._extend(batch)
                elif await self._store.last_position() >= self._next:
                    return  # quiet while the log moved on: reopen from where we are
        finally:
            await cursor.close()

    @property
    def held_bytes(self) -> int:
        """The stored bytes of the events the window holds."""
        return self._bytes

    def _extend(self, batch: list[Recorded]) -> None:
        window = self._window
        for record in batch:
            if record.position == self._next:
                window.append(record)
                self._bytes += record.size
                self._next += 1
                # the oldest leave; the newest stays, however large, so the window is never empty behind ``next``
                while len(window) > 1 and (len(window) > self._max_events or self._bytes > self._max_bytes):
                    self._bytes -= window.popleft().size
        grown, self._grown = self._grown, asyncio.Event()
        grown.set()

    def _slice(self, position: int, max_size: int) -> list[Recorded]:
        start = position - self.first
        return [self._window[i] for i in range(start, min(start + max_size, len(self._window)))]

    def follow(self, from_position: int, *, max_batch: int = 500, idle: float = 1.0) -> Follower:
        """A subscriber reading every event from ``from_position`` on."""
        return Follower(self, from_position, max_batch, idle)


class Follower:
    """One subscriber's place: ``next_batch`` answers the next events in order, ``[]`` after ``idle`` s."""

    def __init__(self, shared: SharedLog, position: int, max_batch: int, idle: float) -> None:
        self._shared = shared
        self.position = max(position, 1)  # the next position this subscriber reads
        self._max = max_batch
        self._idle = idle
        self._own: LogCursor | None = None

    async def next_batch(self) -> list[Recorded]:
        shared = self._shared
        if shared.next == 0 or self.position < shared.first:
            return await self._read_own()
        if self._own is not None:  # caught up with the window: stop reading on our own
            await self._own.close()
            self._own = None
        if self.position >= shared.next:
            grown = shared._grown
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._idle):
                    await grown.wait()
            if self.position >= shared.next or self.position < shared.first:
                return []
        batch = shared._slice(self.position, self._max)
        if batch:
            self.position = batch[-1].position + 1
        return batch

    async def _read_own(self) -> list[Recorded]:
        store = self._shared._store
        if self._own is None:
            self._own = await store.open_cursor(self.position)
        batch = [r for r in await self._own.next_batch(self._max, self._idle) if r.position >= self.position]
        if batch:
            self.position = batch[-1].position + 1
        elif await store.last_position() >= self.position:  # quiet while the log moved on: reopen
            await self._own.close()
            self._own = None
        return batch

    async def close(self) -> None:
        if self._own is not None:
            await self._own.close()
            self._own = None
