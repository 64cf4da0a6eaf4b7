"""What the jobs one runner runs at once may take in memory, in all.

Each running job's processor has its own memory limit (``max_memory_mb``, up
to 1,024 MB, the processor owner's choice): a js-transform's sandbox worker
holds that much heap, and several times it for what V8 allocates besides.
Counted only by number (``job_concurrency``), eight jobs of 1 GB each could
ask a runner's host for tens of gigabytes, and one user's four (the per-user
limit) for half of that. A job starts only when the limits of the jobs
running beside it leave room for its own, first come first served; a job
whose limit is larger than the whole budget runs alone.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager


class MemoryBudget:
    def __init__(self, total_mb: int) -> None:
        self.total = max(1, total_mb)
        self.used = 0
        self._waiting: deque[tuple[int, asyncio.Future[None]]] = deque()

    @asynccontextmanager
    async def reserve(self, mb: int) -> AsyncIterator[None]:
        """Hold ``mb`` of the budget while the block runs, waiting (in order) until it fits."""
        mb = min(max(0, mb), self.total)
        if self._waiting or self.used + mb > self.total:
            turn: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            entry = (mb, turn)
            self._waiting.append(entry)
            try:
                await turn
            except BaseException:
                if turn.done() and not turn.cancelled():
                    self._release(mb)  # granted as it was cancelled: hand it on
                else:
                    with contextlib.suppress(ValueError):  # a cancelled turn may have been passed over already
                        self._waiting.remove(entry)
                    self._grant()  # it may have held back smaller ones behind it
                raise
        else:
            self.used += mb
        try:
            yield
        finally:
            self._release(mb)

    def _release(self, mb: int) -> None:
        self.used -= mb
        self._grant()

    def _grant(self) -> None:
        while self._waiting:
            mb, turn = self._waiting[0]
            if turn.done():
                self._waiting.popleft()
                continue
            if self.used + mb > self.total:
                return  # first come, first served: nobody passes the first that does not fit
            self._waiting.popleft()
            self.used += mb
            turn.set_result(None)
