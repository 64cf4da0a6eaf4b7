"""How many bytes of Direct Get replies may be on their way to this process at once.

The server writes a request's replies to the process's one connection as fast
as it can read them from its store, and cuts the connection as a slow consumer
once 64 MiB wait to be written to it (``max_pending``). Each batched Direct Get
asks for at most ``LOAD_MAX_BYTES``, but nothing bounded how many were in
flight: 40 concurrent loads of one 7 MiB aggregate (``?as_of=`` at 40
positions is one account's burst) on a busy event loop had the connection cut,
and every request in flight on it failed, everyone's appends included. So a
request first takes the bytes its replies may weigh from this budget, and
gives them back once they are all in; a request that does not fit waits, first
come first served. What is left of the server's allowance covers the push
consumer that follows the log's tail (its flow-control window is 32 MiB).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

MIB = 1024 * 1024

RECEIVE_BYTES = 24 * MIB


class ReceiveBudget:
    def __init__(self, capacity: int = RECEIVE_BYTES) -> None:
        if capacity < 1:
            raise ValueError("the receive budget must be at least one byte")
        self._capacity = capacity
        self._free = capacity
        self._waiting: deque[tuple[int, asyncio.Future[None]]] = deque()

    @property
    def free(self) -> int:
        return self._free

    @asynccontextmanager
    async def take(self, size: int) -> AsyncIterator[None]:
        """Hold ``size`` bytes (at most the whole budget) while the replies arrive."""
        held = await self.acquire(size)
        try:
            yield
        finally:
            self.release(held)

    async def acquire(self, size: int) -> int:
        """Wait for ``size`` bytes (at most the whole budget); answers what was taken, for ``release``."""
        size = max(1, min(size, self._capacity))
        if not self._waiting and self._free >= size:
            self._free -= size
            return size
        turn: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        entry = (size, turn)
        self._waiting.append(entry)
        try:
            await turn
        except BaseException:
            if turn.done() and not turn.cancelled():
                self.release(size)  # granted just as it was cancelled: pass the bytes on
            else:
                if entry in self._waiting:
                    self._waiting.remove(entry)
                self._grant()  # it may have held back smaller requests behind it
            raise
        return size

    def release(self, size: int) -> None:
        self._give(size)

    def _give(self, size: int) -> None:
        self._free += size
        self._grant()

    def _grant(self) -> None:
        while self._waiting and (self._waiting[0][1].done() or self._free >= self._waiting[0][0]):
            size, turn = self._waiting.popleft()
            if not turn.done():  # (a cancelled waiter's turn is done: it leaves the queue)
                self._free -= size
                turn.set_result(None)
