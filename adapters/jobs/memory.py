"""What the jobs one runner runs at once may take in memory, in all.

A js-transform's owner picks its memory limit (``max_memory_mb``, up to
1,024 MB), and its sandbox worker may hold several times that (what V8
allocates besides its heap). Counted only by number (``job_concurrency``),
eight such jobs could ask a runner's host for tens of gigabytes, and one
user's four (the per-user limit) for half of that. So a job whose processor
runs in the sandbox starts only when the limits of those running beside it
leave room for its own:

* in order of arrival, each that fits goes (a small job is not held behind a
  big one that does not fit yet);
* one user holds at most half of the budget, so one user's big jobs never
  fill it for everyone (a job over the share runs once the user holds
  nothing else; one over the whole budget runs alone).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter, deque


class MemoryBudget:
    def __init__(self, total_mb: int) -> None:
        self.total = max(1, total_mb)
        self.share = max(1, self.total // 2)
        self.used = 0
        self._by_user: Counter[str] = Counter()
        self._waiting: deque[tuple[str, int, asyncio.Future[None]]] = deque()

    def _fits(self, user: str, mb: int) -> bool:
        held = self._by_user[user]
        within_share = held + mb <= self.share or held == 0
        return within_share and (self.used + mb <= self.total or self.used == 0)

    async def acquire(self, user: str, mb: int) -> int:
        """Hold ``mb`` (at most the whole budget) for ``user``, waiting until it fits; what to ``release``."""
        mb = min(max(0, mb), self.total)
        if self._fits(user, mb):
            self._take(user, mb)
            return mb
        turn: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        entry = (user, mb, turn)
        self._waiting.append(entry)
        try:
            await turn
        except BaseException:
            if turn.done() and not turn.cancelled():
                self.release(user, mb)  # granted as it was cancelled: hand it on
            else:
                with contextlib.suppress(ValueError):  # a cancelled turn may have been passed over already
                    self._waiting.remove(entry)
            raise
        return mb

    def release(self, user: str, mb: int) -> None:
        self.used -= mb
        self._by_user[user] -= mb
        if self._by_user[user] <= 0:
            del self._by_user[user]
        self._grant()

    def _take(self, user: str, mb: int) -> None:
        self.used += mb
        self._by_user[user] += mb

    def _grant(self) -> None:
        for entry in list(self._waiting):
            user, mb, turn = entry
            if turn.done():
                self._waiting.remove(entry)
            elif self._fits(user, mb):
                self._waiting.remove(entry)
                self._take(user, mb)
                turn.set_result(None)
