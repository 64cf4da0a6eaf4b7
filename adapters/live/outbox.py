"""One live connection's outgoing side: a bounded queue of messages, whatever the transport.

The router never waits on a connection: it ``offer``s a message, and a full
queue marks the connection *overflowed* (the transport then closes it, 4408
on a WebSocket, and the client resumes with ``since``). A catch-up from the
log, which the connection itself asked for, ``put``s and waits for room
instead, so replaying a long history never overflows anyone.

The budget is the connection's, not a subscription's: ``capacity`` messages
and ``max_bytes`` of encoded messages, whichever comes first, counting the
queue *and* the pushes held in the pending lists of all its subscriptions
that are not live yet (waiting for their catch-up's turn, or replaying): a
slow reader of large blobs cannot hold a thousand of them, and two hundred
subscriptions waiting behind a catch-up cannot hold two hundred budgets.
A connection holding nothing takes any one message, however large, so a blob
bigger than ``max_bytes`` is still delivered to a reader that keeps up.

One user's connections together have a budget of bytes too (``UserHolding``): a
message offered to a connection when the user's connections already hold
``max_bytes`` in all overflows that connection, unless the user holds nothing at
all (any one message goes). Without it, a user's connections that do not read
could hold their count times a connection's budget (20 × 8 MiB, plus one
message each). A catch-up ``put``s into half of the user's budget too (it waits
for room in its own connection or for any of the user's connections to let
bytes go), so the pushes routed meanwhile keep the other half. A connection that
holds nothing takes a message whatever its siblings hold: the one that kept up
is not the one to close.

A catch-up ``put``s into at most half of the budget (an empty queue always
takes one message), so the pushes routed meanwhile, held in its pending
list, have the other half before the connection overflows.

A push is one ``Message`` shared by every connection on its topic and
serialised once, however many connections send it (its size is known from
that one serialisation).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Coroutine
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


class UserHolding:
    """The bytes every live connection of one user holds (queues and pending lists), in all."""

    __slots__ = ("max_bytes", "bytes", "_freed")

    def __init__(self, max_bytes: int | None) -> None:
        self.max_bytes = max_bytes
        self.bytes = 0
        self._freed = asyncio.Event()  # replaced (after being set) whenever bytes are let go: a broadcast

    def full_for(self, message: Message) -> bool:
        return self.max_bytes is not None and self.bytes > 0 and self.bytes + message.size > self.max_bytes

    def no_room_to_put(self, message: Message) -> bool:
        """A catch-up's share of the user's budget: half of it, as of a connection's."""
        return self.max_bytes is not None and self.bytes + message.size > self.max_bytes // 2

    def charge(self, delta: int) -> None:
        self.bytes += delta
        if delta < 0:
            freed, self._freed = self._freed, asyncio.Event()
            freed.set()

    async def wait_freed(self) -> None:
        await self._freed.wait()


class Outbox:
    """A connection's queue, and the subscriptions it holds (by topic)."""

    def __init__(self, user_id: str, capacity: int, transport: str, max_bytes: int | None = None,
                 user: UserHolding | None = None) -> None:
        self.user_id = user_id
        self.user = user
        self._charged = 0
        """What this connection holds as ``user`` counts it (brought up to ``held_bytes`` after each change)."""
        self.transport = transport
        self.capacity = capacity
        self.max_bytes = max_bytes
        self.bytes = 0
        """The encoded bytes of the messages waiting in the queue."""
        self.pending_bytes = 0
        """The encoded bytes of the pushes held in its subscriptions' pending lists..."""
        self.pending_count = 0
        """... and how many they are: the queue and these share the connection's budget."""
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

    @property
    def held(self) -> int:
        """Messages held for this connection: its queue and its subscriptions' pending lists."""
        return len(self._queue) + self.pending_count

    @property
    def held_bytes(self) -> int:
        return self.bytes + self.pending_bytes

    def full_for(self, message: Message) -> bool:
        """Whether ``message`` does not fit: ``capacity`` messages are held (queue and pending lists
        together), or it would take the bytes held past ``max_bytes`` (a connection holding nothing
        takes any one message)."""
        if self.held >= self.capacity:
            return True
        # the user's budget closes a connection that holds something: one that has kept up (holds
        # nothing) is not the one to blame, whatever its siblings hold
        if self.user is not None and self.held > 0 and self.user.full_for(message):
            return True
        return self.max_bytes is not None and self.held > 0 and self.held_bytes + message.size > self.max_bytes

    def _charge(self) -> None:
        """Bring the user's count up to date with what this connection holds now."""
        if self.user is not None and not self.closed:
            held = self.bytes + self.pending_bytes
            if held != self._charged:
                self.user.charge(held - self._charged)
                self._charged = held

    def _no_room_to_put(self, message: Message) -> bool:
        """A catch-up's share: half of the budget (an empty queue takes any one message), the rest
        left to the pushes held in pending lists meanwhile."""
        if not self._queue:
            return False
        if self.held >= max(1, self.capacity // 2):
            return True
        if self.user is not None and self.user.no_room_to_put(message):
            return True
        return self.max_bytes is not None and self.held_bytes + message.size > self.max_bytes // 2

    def offer(self, message: Message) -> bool:
        """Queue without waiting; a full connection overflows (False)."""
        if self.overflowed or self.closed:
            return False
        if self.full_for(message):
            self.overflow()
            return False
        self._append(message)
        return True

    async def put(self, message: Message) -> bool:
        """Queue, waiting for room (in the catch-up's half of the budget); False once the connection
        has overflowed or closed."""
        while self._no_room_to_put(message) and not (self.overflowed or self.closed):
            self._room.clear()
            if self.user is None:
                await self._room.wait()
            else:  # room in its own queue, or bytes let go by any of its user's connections
                await _either(self._room.wait(), self.user.wait_freed())
        if self.overflowed or self.closed:
            return False
        self._append(message)
        return True

    def hold(self, sub: Subscription, message: Message) -> bool:
        """Keep a push in ``sub``'s pending list (it is not live yet), charged to this connection's
        budget; past it the connection overflows (False)."""
        if self.overflowed or self.closed:
            return False
        if self.full_for(message):
            self.overflow()
            return False
        assert sub.pending is not None
        sub.pending.append(message)
        sub.pending_bytes += message.size
        self.pending_bytes += message.size
        self.pending_count += 1
        self._charge()
        return True

    def release(self, sub: Subscription) -> list[Message | End]:
        """``sub``'s pending list, taken out of it and out of this connection's count (``sub`` is
        going live, or going away)."""
        pending, sub.pending = sub.pending or [], None
        self.pending_bytes -= sub.pending_bytes
        self.pending_count -= sum(1 for item in pending if isinstance(item, Message))
        sub.pending_bytes = 0
        self._charge()
        return pending

    def admit(self, message: Message) -> bool:
        """Queue a message already counted in the budget (a pending push moving to the queue), or
        the one ``caught_up`` of a catch-up: no check; False once overflowed or closed."""
        if self.overflowed or self.closed:
            return False
        self._append(message)
        return True

    def _append(self, message: Message) -> None:
        self._queue.append(message)
        self.bytes += message.size
        self._charge()
        self._wake.set()

    def overflow(self) -> None:
        self.overflowed = True
        self._queue.clear()
        self.bytes = 0
        for sub in self.subscriptions.values():  # nothing held will be sent: let it all go now
            if sub.pending:
                sub.pending.clear()
                sub.pending_bytes = 0
        self.pending_bytes = self.pending_count = 0
        self._charge()
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
        self._charge()
        self._room.set()
        return message

    def close(self) -> None:
        """Nothing more will be sent: wake whoever waits for room or for a message. What it
        still holds no longer counts for its user."""
        if self.user is not None and not self.closed:
            self.user.charge(-self._charged)
            self._charged = 0
        self.closed = True
        self._room.set()
        self._wake.set()


async def _either(*waits: Coroutine[Any, Any, Any]) -> None:
    tasks = [asyncio.ensure_future(w) for w in waits]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()


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
    """The encoded bytes of the messages in ``pending`` (charged to the connection's budget)."""
    ended: bool = False
