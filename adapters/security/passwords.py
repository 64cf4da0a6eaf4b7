"""argon2id password hashing (argon2-cffi), in threads of its own so the loop stays free.

Each hash is about 30 ms of a core, by design, and anyone may ask for one: a login with any email
costs one (a dummy when the account is unknown, so that timing tells nothing). The per-address limit
lets one address ask for more hashes a second than two cores make, so a queue without a bound would
grow for as long as a flood lasts, and every real login would wait behind it (2.6 s after a burst of
200). So at most ``workers`` hashes run at once, on threads that do nothing else (the loop's default
pool also resolves host names), and at most ``waiting`` more wait: past that a sign-in is answered
503 at once, to be tried again, instead of joining a queue that only grows.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from argon2 import PasswordHasher as Argon2
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from commands.ports import Unavailable

T = TypeVar("T")

WAITING = 64
"""Hashes that may wait for a thread: about half a second of work on two cores."""


class Argon2Hasher:
    def __init__(self, time_cost: int = 2, memory_kib: int = 19456, parallelism: int = 1, *,
                 workers: int | None = None, waiting: int = WAITING) -> None:
        self._argon = Argon2(time_cost=time_cost, memory_cost=memory_kib, parallelism=parallelism)
        self._dummy = self._argon.hash("inkstream-dummy-password")
        self.workers = workers or max(1, min(4, os.cpu_count() or 1))
        self._threads = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="argon2")
        self._waiting = waiting
        self._admitted = 0  # running or waiting
        self.refused = 0

    async def hash(self, password: str) -> str:
        return await self._run(self._argon.hash, password)

    async def verify(self, password_hash: str, password: str) -> bool:
        return await self._run(self._check, password_hash, password)

    async def verify_dummy(self, password: str) -> None:
        await self._run(self._check, self._dummy, password)

    async def _run(self, work: Callable[..., T], *args: str) -> T:
        if self._admitted >= self.workers + self._waiting:
            self.refused += 1
            raise Unavailable("too many sign-ins at once: try again in a moment")
        loop = asyncio.get_running_loop()
        self._admitted += 1
        try:
            job = self._threads.submit(work, *args)
        except BaseException:
            self._admitted -= 1
            raise
        # counted until the thread is done with it, not until its caller stops waiting: a caller that
        # went away (a client that hung up) must not make room for more work than there are threads
        job.add_done_callback(lambda _: _soon(loop, self._release))
        return await asyncio.wrap_future(job)

    def _release(self) -> None:
        self._admitted -= 1

    def close(self) -> None:
        self._threads.shutdown(wait=False, cancel_futures=True)

    def _check(self, password_hash: str, password: str) -> bool:
        try:
            return self._argon.verify(password_hash, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False


def _soon(loop: asyncio.AbstractEventLoop, callback: Callable[[], None]) -> None:
    try:
        loop.call_soon_threadsafe(callback)
    except RuntimeError:  # the loop is closed: nothing is counted any more
        pass
