"""One live connection's outgoing side: a bounded queue of messages, whatever the transport.

The router never waits on a connection: it ``offer``s a message, and a full
queue marks the connection *overflowed* (the transport then closes it, 4408
on a WebSocket, and the client resumes with ``since``). A catch-up from the
log, which the connection itself asked for, ``put``s and waits for room
instead, so replaying a long history never overflows anyone.

A push is one ``Message`` shared by every connection on its topic and
serialised once, however many connections send it.
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

    __slots__ = ("type", "data", "position", "_text", "_data_text")

    def __init__(self, type: str, data: dict[str, Any], position: int | None = None) -> None:  # noqa: A002
        self.type = type
        self.data = data
        self.position = position
        self._text: str | None = None
        self._data_text: str | None = None

    @classmethod
    def of(cls, push: Push) -> Message:
        return cls(push.type, push.data, push.position)

    @property
    def is_push(self) -> bool:
        return "." in self.type

    def text(self) -> str:
        """The WebSocket frame."""
        if self._text is None:
            self._text = orjson.dumps({"type": self.type, "data": self.data}).decode()
        return self._text

    def data_text(self) -> str:
        """The SSE ``data:`` line."""
        if self._data_text is None:
            self._data_text = orjson.dumps(self.data).decode()
        return self._data_text


def topic_field(topic: Topic) -> dict[str, str]:
    """``{"bucket_id": B}``, ``{"job_id": J}`` or ``{"migration_id": M}``."""
    return {f"{topic[0]}_id": topic[1]}


class Outbox:
    """A connection's queue, and the subscriptions it holds (by topic)."""

    def __init__(self, user_id: str, capacity: int, transport: str) -> None:
        self.user_id = user_id
        self.transport = transport
        self.capacity = capacity
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

    def offer(self, message: Message) -> bool:
        """Queue without waiting; a full queue overflows the connection (False)."""
        if self.overflowed or self.closed:
            return False
        if len(self._queue) >= self.capacity:
            self.overflow()
            return False
        self._queue.append(message)
        self._wake.set()
        return True

    async def put(self, message: Message) -> bool:
        """Queue, waiting for room; False once the connection has overflowed."""
        while len(self._queue) >= self.capacity and not (self.overflowed or self.closed):
            self._room.clear()
            await self._room.wait()
        if self.overflowed or self.closed:
            return False
        self._queue.append(message)
        self._wake.set()
        return True

    def overflow(self) -> None:
        self.overflowed = True
        self._queue.clear()
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
    ended: bool = False
