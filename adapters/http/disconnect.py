"""Noticing a client that went away while its request waits.

aiohttp does not cancel a handler when its client disconnects (``handler_cancellation``
is off, and should stay off: a command cut short half-way is worse than one
finished for nobody). A request that merely waits for its turn (a page read
behind the user's other ones) has nothing to finish, though, and would hold its
place in the queue, then build a page for nobody. Around such a wait, the
handler's task is cancelled once its client is gone, noticed within ``every``
seconds.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from aiohttp import web


def request_gone(request: web.Request) -> bool:
    transport = request.transport
    return transport is None or transport.is_closing()


@asynccontextmanager
async def cancelled_when_gone(request: web.Request, every: float = 1.0) -> AsyncIterator[None]:
    """Inside, the current task is cancelled when ``request``'s client goes away. Only around
    waits: work that must finish once begun is never inside."""
    task = asyncio.current_task()
    assert task is not None

    async def watch() -> None:
        while not request_gone(request):
            await asyncio.sleep(every)
        task.cancel()

    watcher = asyncio.create_task(watch())
    try:
        yield
    finally:
        watcher.cancel()
