"""How many heavy requests (book exports) run at once: a few per user, a few per process at a time.

A request rate limit counts requests, not their cost: an 8 MiB book's export
takes about 0.1 s of the event loop's time (reading it, rendering every
chapter), so one user's burst of 100 of them held everyone else's requests for
seconds. Here a user gets at most ``per_user`` heavy requests in flight in this
process, and one more is refused at once with 429 (a retry soon succeeds).
Their work itself (each step that costs the loop's time: reading the book,
rendering one chapter) runs at most ``per_process`` steps at a time; the rest
wait their turn. A step never includes sending: a client that does not read
holds its own slot, never one of the process's, so a few accounts with
stalled connections cannot stop everyone's exports.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from adapters.http.errors import RateLimited


class InFlight:
    def __init__(self, what: str, per_user: int, per_process: int) -> None:
        if per_user < 1 or per_process < 1:
            raise ValueError("in-flight limits must be at least 1")
        self._what = what
        self._per_user = per_user
        self._running: dict[str, int] = {}
        self._process = asyncio.Semaphore(per_process)

    def running(self, user: str) -> int:
        return self._running.get(user, 0)

    @asynccontextmanager
    async def slot(self, user: str) -> AsyncIterator[None]:
        """Hold one of ``user``'s slots for the whole request (429 when they are all taken)."""
        if self._running.get(user, 0) >= self._per_user:
            raise RateLimited(f"at most {self._per_user} {self._what} at a time; wait for one to finish", retry_after=1.0)
        self._running[user] = self._running.get(user, 0) + 1
        try:
            yield
        finally:
            left = self._running[user] - 1
            if left:
                self._running[user] = left
            else:
                del self._running[user]

    @asynccontextmanager
    async def step(self) -> AsyncIterator[None]:
        """One step of a heavy request's work on the loop, at most ``per_process`` at a time. Never
        await the client (a write, a drain) inside it."""
        async with self._process:
            yield
