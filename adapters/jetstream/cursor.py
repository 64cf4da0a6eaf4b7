"""Reading the log in order from a position: bounded pages while behind, a push consumer at the tail.

Every cursor used to be an ordered push consumer from its first position. The
server lets each such consumer have 32 MiB in flight (its flow-control window,
``JsFlowControlMaxPending``) and each client connection 64 MiB waiting to be
written (``max_pending``), and every consumer of a process shares its one
connection. A new process catching up on a log of large events, with eight
projections and the job triggers each on a cursor of its own, had the server
pushing hundreds of MiB at a connection whose event loop was busy projecting:
the server cut it as a slow consumer again and again, and every request in
flight on it (appends, loads) failed with it.

So a cursor that is behind reads the log by batched Direct Gets, each bounded
in bytes (``page``), asking for the next page while its reader works on the
current one: what it has in flight is at most two pages, whatever the log
holds (one page at a time read at half the speed of a push consumer). Only a cursor that reached the tail follows a push
consumer, and its queue is bounded in bytes: a reader that falls
``behind_bytes`` behind drops the consumer (the rest is not kept) and reads
pages again from the position after the last event it handed out.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

from nats.aio.msg import Msg

from adapters.jetstream.decoding import stream_sequence
from domain.recorded import Recorded

MIB = 1024 * 1024

PAGE_BYTES = MIB // 2
"""What one page of a cursor asks the server for (the server adds the message that crosses it)."""

BEHIND_BYTES = 8 * MIB
"""How much a push consumer's queue may hold before its reader counts as behind (and pages again)."""

Page = Callable[[int, int], Awaitable[tuple[list[Recorded], bool]]]
"""``page(position, count)``: up to ``count`` events from ``position``, and whether more follow."""

Subscribe = Callable[[int, Callable[[Msg], Awaitable[None]]], Awaitable[Any]]
"""``subscribe(position, callback)``: an ordered push consumer from ``position`` (answers its subscription)."""

ToRecorded = Callable[[str, int, dict[str, str] | None, bytes], Recorded]


class JetStreamCursor:
    """Implements ``commands.ports.LogCursor``. Waiting with a timeout happens on an event, never
    by cancelling an iterator, so a caller can poll for idleness without losing its place."""

    def __init__(self, page: Page, subscribe: Subscribe, to_recorded: ToRecorded, position: int, *,
                 behind_bytes: int = BEHIND_BYTES) -> None:
        self._page = page
        self._subscribe = subscribe
        self._to_recorded = to_recorded
        self._behind_bytes = behind_bytes
        self.position = max(position, 1)
        """The next position this cursor hands out."""
        self._queue: deque[Msg] = deque()
        self._queued = 0
        self._expected = 0  # the position the push consumer should deliver next
        self._dropped = False
        self._stopping: asyncio.Future[None] | None = None
        self._arrived = asyncio.Event()
        self.sub: Any = None
        self.pages = 0
        """How many pages it has asked for."""
        self._ahead: asyncio.Future[tuple[list[Recorded], bool]] | None = None
        self._ahead_size = 0

    @property
    def pushed(self) -> bool:
        """Whether the cursor follows a push consumer now (it reached the tail)."""
        return self.sub is not None

    async def on_msg(self, msg: Msg) -> None:
        if self._dropped:
            return
        position = stream_sequence(msg)
        if self._queued >= self._behind_bytes or position != self._expected:
            # Behind, or the consumer skipped or went back (nats-py recreates a lost ordered consumer
            # from the last position it delivered, which is 1 before its first delivery): this one
            # and all after it are read as pages instead, and the consumer stops now, not once the
            # reader has drained the queue (it would push the whole backlog at full speed meanwhile).
            self._dropped = True
            self._stopping = asyncio.ensure_future(_unsubscribe(self.sub))
        else:
            self._queue.append(msg)
            self._queued += len(msg.data) + len(msg.subject)
            self._expected = position + 1
        self._arrived.set()

    async def next_batch(self, max_size: int, timeout: float | None) -> list[Recorded]:
        while True:
            if self.sub is None:
                records, more = await self._next_page(max_size)
                start = records[-1].position + 1 if records else self.position
                if more:  # ask for the next page while the caller works on this one
                    self._ahead, self._ahead_size = asyncio.ensure_future(self._read_page(start, max_size)), max_size
                else:  # at the tail: follow it (should subscribing fail, the page is read again)
                    self._dropped, self._expected = False, start
                    self.sub = await self._subscribe(start, self.on_msg)
                self.position = start
                if records:
                    return records
            if self._queue:
                records = self._take(max_size)
                if records:
                    return records
                continue
            if self._dropped:  # fell behind: page from where the queue ended
                await self._unsubscribe()
                continue
            self._arrived.clear()
            try:
                async with asyncio.timeout(timeout):
                    await self._arrived.wait()
            except TimeoutError:
                return []

    async def _next_page(self, max_size: int) -> tuple[list[Recorded], bool]:
        ahead, self._ahead = self._ahead, None
        if ahead is not None:
            if self._ahead_size == max_size:
                records, more = await ahead
                if not records or records[0].position == self.position:
                    return records, more
            else:  # asked for another size: read again
                _forget(ahead)
        return await self._read_page(self.position, max_size)

    async def _read_page(self, position: int, count: int) -> tuple[list[Recorded], bool]:
        self.pages += 1
        return await self._page(position, count)

    def _take(self, max_size: int) -> list[Recorded]:
        records: list[Recorded] = []
        while self._queue and len(records) < max_size:
            msg = self._queue.popleft()
            self._queued -= len(msg.data) + len(msg.subject)
            position = stream_sequence(msg)
            if position >= self.position:
                records.append(self._to_recorded(msg.subject, position, msg.headers, msg.data))
                self.position = position + 1
        return records

    async def _unsubscribe(self) -> None:
        sub, self.sub = self.sub, None
        stopping, self._stopping = self._stopping, None
        self._queue.clear()
        self._queued = 0
        if stopping is not None:
            await stopping
        elif sub is not None:
            await _unsubscribe(sub)

    async def close(self) -> None:
        ahead, self._ahead = self._ahead, None
        if ahead is not None:  # not awaited: closing must not wait on the log (nor hide a cancellation)
            _forget(ahead)
        await self._unsubscribe()


def _forget(future: asyncio.Future[Any]) -> None:
    """Cancel a read ahead nobody will await (its failure, if any, noted as retrieved)."""
    future.add_done_callback(lambda done: done.cancelled() or done.exception())
    future.cancel()


async def _unsubscribe(sub: Any) -> None:
    if sub is not None:
        with contextlib.suppress(Exception):  # the connection may already be gone
            await sub.unsubscribe()
