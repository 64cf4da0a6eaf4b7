"""How many heavy requests (book exports) run at once: a few per user, a few per process.

A request rate limit counts requests, not their cost: an 8 MiB book's export
takes about 0.1 s of the event loop's time (reading it, rendering every
chapter), so one user's burst of 100 of them held everyone else's requests for
seconds. Here a user gets at most ``per_user`` heavy requests in flight in this
process, and one more is refused at once with 429 (a retry soon succeeds);
the process runs at most ``per_process`` of them at a time, and the rest wait
their turn (holding nothing but a socket), so many accounts together cannot
crowd out light requests either.
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
        """Hold one of ``user``'s slots (429 when they are all taken) and then one of the process's."""
        if self._running.get(user, 0) >= self._per_user:
            raise RateLimited(f"at most {self._per_user} {self._what} at a time; wait for one to finish", retry_after=1.0)
        self._running[user] = self._running.get(user, 0) + 1
        try:
            async with self._process:
                yield
        finally:
            left = self._running[user] - 1
            if left:
                self._running[user] = left
            else:
                del self._running[user]
