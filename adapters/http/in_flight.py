"""How many heavy requests (book exports, pages of big lists) run at once: a few per user, a few per process.

A request rate limit counts requests, not their cost: an 8 MiB book's export
takes about 0.1 s of the event loop's time (reading it, rendering every
chapter), and a full page of blobs about as much, so one user's burst of 100 of
them held everyone else's requests for seconds. Here a user gets at most
``per_user`` heavy requests in flight in this process. One more either waits
for a turn, first come first served among that user's requests (at most
``waiting_per_user`` of them wait: a UI or the SDK that asks for a few pages at
once is served, not refused), or, past that, is refused at once with 429 (a
retry soon succeeds). Exports wait for nothing (``waiting_per_user=0``): an
export is a download a client starts on purpose, and it holds its slot while
the client reads.

Their work itself (each step that costs the loop's time: reading the book,
rendering one chapter, reading and encoding one page) runs at most
``per_process`` steps at a time; the rest wait their turn. A step never
includes sending: a client that does not read holds its own slot, never one of
the process's, so a few accounts with stalled connections cannot stop
everyone's work.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from adapters.http.errors import RateLimited


@dataclass(slots=True)
class _Turns:
    """One user's slots in use, and the requests waiting for one, oldest first."""

    running: int = 0
    waiting: deque[asyncio.Future[None]] = field(default_factory=deque)


class InFlight:
    def __init__(self, what: str, per_user: int, per_process: int, waiting_per_user: int = 0) -> None:
        if per_user < 1 or per_process < 1 or waiting_per_user < 0:
            raise ValueError("in-flight limits must be at least 1 (and waiting at least 0)")
        self._what = what
        self._per_user = per_user
        self._waiting_per_user = waiting_per_user
        self._users: dict[str, _Turns] = {}
        self._process = asyncio.Semaphore(per_process)

    def running(self, user: str) -> int:
        turns = self._users.get(user)
        return turns.running if turns is not None else 0

    def waiting(self, user: str) -> int:
        turns = self._users.get(user)
        return sum(not turn.done() for turn in turns.waiting) if turns is not None else 0

    @asynccontextmanager
    async def slot(self, user: str) -> AsyncIterator[None]:
        """Hold one of ``user``'s slots for as long as the request needs it: wait for one when they
        are all taken (429 when ``waiting_per_user`` of the user's requests wait already). Cancelling
        the wait (the client went away) gives up the place in the queue, or hands on a slot just
        granted."""
        await self._acquire(user)
        try:
            yield
        finally:
            self._release(user)

    @asynccontextmanager
    async def step(self) -> AsyncIterator[None]:
        """One step of a heavy request's work on the loop, at most ``per_process`` at a time. Never
        await the client (a write, a drain) inside it."""
        async with self._process:
            yield

    async def _acquire(self, user: str) -> None:
        turns = self._users.setdefault(user, _Turns())
        # granting is eager (a freed slot goes straight to the oldest waiter): with a slot free, nobody waits
        if turns.running < self._per_user:
            turns.running += 1
            return
        if len(turns.waiting) >= self._waiting_per_user:
            waiting = f" and {self._waiting_per_user} waiting" if self._waiting_per_user else ""
            raise RateLimited(f"at most {self._per_user} {self._what} at a time{waiting}; wait for one to finish",
                              retry_after=1.0)
        turn: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        turns.waiting.append(turn)
        try:
            await turn
        except BaseException:
            if turn.done() and not turn.cancelled():
                self._release(user)  # granted just as it was cancelled: hand the slot on
            elif turn in turns.waiting:
                turns.waiting.remove(turn)
            raise

    def _release(self, user: str) -> None:
        turns = self._users[user]
        while turns.waiting:
            turn = turns.waiting.popleft()
            if not turn.done():  # (a cancelled waiter's turn is done: skipped)
                turn.set_result(None)  # the slot passes to it: ``running`` stays
                return
        turns.running -= 1
        if not turns.running:
            del self._users[user]
