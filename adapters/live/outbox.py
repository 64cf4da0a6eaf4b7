"""One live connection's outgoing side: a bounded queue of messages, whatever the transport.

The router never waits on a connection: it ``offer``s a message, and a full
queue marks the connection *overflowed* (the transport then closes it, 4408
on a WebSocket, and the client resumes with ``since``). A catch-up from the
log, which the connection itself asked for, ``put``s and waits for room
instead, so replaying a long history never overflows anyone.

A queue is full at ``capacity`` messages or at ``max_bytes`` of encoded
messages, whichever comes first: a slow reader of large blobs cannot hold
a thousand of them. One message always fits in an empty queue, however
large, so a blob bigger than ``max_bytes`` is still delivered to a reader
that keeps up.

A push is one ``Message`` shared by every connection on its topic and
serialised once, however many connections send it (its size is known from
that one serialisation).
"""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import orjson

from projections.pushes import Push, Topic


class Message:
    """``{"type": ..., "data": {...}}``; ``position`` when it speaks for a place in the log."""

    __slots__ = ("type", "data", "position", "_text", "_data_text", "_size")

    def __init__(self, type: str, data: dict[str, Any], position: int | None = None) -> None:  # noqa: A002
        self.type = type
        self.data = data
        self.position = position
        self._text: str | None = None
        self._data_text: str | None = None
        self._size = 0

    @classmethod
    def of(cls, push: Push) -> Message:
        return cls(push.type, push.data, push.position)

    @property
    def is_push(self) -> bool:
        return "." in self.type

    def text(self) -> str:
        """The WebSocket frame (``{"type":...,"data":...}``, around the one serialisation of ``data``)."""
        if self._text is None:
            self._text = f'{{"type":{orjson.dumps(self.type).decode()},"data":{self.data_text()}}}'
        return self._text

    def data_text(self) -> str:
        """The SSE ``data:`` line."""
        if self._data_text is None:
            encoded = orjson.dumps(self.data)
            self._size = len(encoded) + len(self.type) + 20  # the frame around it, or the SSE fields
            self._data_text = encoded.decode()
        return self._data_text

    @property
    def size(self) -> int:
        """Bytes it weighs in a queue: its encoded data and the frame around it."""
        if self._data_text is None:
            self.data_text()
        return self._size


def topic_field(topic: Topic) -> dict[str, str]:
    """``{"bucket_id": B}``, ``{"job_id": J}`` or ``{"migration_id": M}``."""
    return {f"{topic[0]}_id": topic[1]}


class Outbox:
    """A connection's queue, and the subscriptions it holds (by topic)."""

    def __init__(self, user_id: str, capacity: int, transport: str, max_bytes: int | None = None) -> None:
        self.user_id = user_id
        self.transport = transport
        self.capacity = capacity
        self.max_bytes = max_bytes
        self.bytes = 0
        """The encoded bytes of the messages waiting."""
        self.subscriptions: dict[Topic, Subscription] = {}
        self.overflowed = False
        self.closed = False
        self.failed = asyncio.Event()
        """Set when the connection must close (it overflowed): transports wait on it beside their work."""
        self._queue: deque[Message] = deque()
        self._wake = asyncio.Event()
        self._room = asyncio.Event()

    def __len__(self) -> int:
        return len(self._queue)

    def full_for(self, message: Message) -> bool:
        """Whether ``message`` does not fit: ``capacity`` messages are waiting, or it would take the
        waiting bytes past ``max_bytes`` (an empty queue takes any one message)."""
        if len(self._queue) >= self.capacity:
            return True
        return self.max_bytes is not None and bool(self._queue) and self.bytes + message.size > self.max_bytes

    def offer(self, message: Message) -> bool:
        """Queue without waiting; a full queue overflows the connection (False)."""
        if self.overflowed or self.closed:
            return False
        if self.full_for(message):
            self.overflow()
            return False
        self._append(message)
        return True

    async def put(self, message: Message) -> bool:
        """Queue, waiting for room; False once the connection has overflowed."""
        while self.full_for(message) and not (self.overflowed or self.closed):
            self._room.clear()
            await self._room.wait()
        if self.overflowed or self.closed:
            return False
        self._append(message)
        return True

    def _append(self, message: Message) -> None:
        self._queue.append(message)
        self.bytes += message.size
        self._wake.set()

    def overflow(self) -> None:
        self.overflowed = True
        self._queue.clear()
        self.bytes = 0
        self.failed.set()
        self._wake.set()
        self._room.set()

    async def get(self, timeout: float | None = None) -> Message | None:
        """The next message; None after ``timeout`` s with nothing to send, or once overflowed."""
        while not self._queue:
            if self.overflowed or self.closed:
                return None
            self._wake.clear()
            try:
                async with asyncio.timeout(timeout):
                    await self._wake.wait()
            except TimeoutError:
                return None
        message = self._queue.popleft()
        self.bytes -= message.size
        self._room.set()
        return message

    def close(self) -> None:
        """Nothing more will be sent: wake whoever waits for room or for a message."""
        self.closed = True
        self._room.set()
        self._wake.set()


@dataclass(frozen=True, slots=True)
class End:
    """Where a subscription ends (its bucket was deleted, or is no longer its subscriber's),
    kept in order behind the pushes still pending before it."""

    reason: str
    position: int


@dataclass(eq=False)
class Subscription:
    outbox: Outbox
    topic: Topic
    after: int
    """Pushes at this position or before are never sent (``since``, or where it went live)."""
    live_from: int
    replay: bool
    pending: list[Message | End] | None = field(default_factory=list)
    pending_bytes: int = 0
    """The encoded bytes of the messages in ``pending`` (bounded like the queue)."""
    ended: bool = False
