"""Pages of big lists take turns: one definition for every list whose rows can be large.

Blobs, schema versions, histories, books, processors, jobs and migration runs are paged in
bytes (``PAGE_BYTES``), so one page can cost tens of milliseconds of the event
loop. Their handlers read and encode a page inside ``page_turn``, and their
OpenAPI descriptions say how such a page ends (``BYTE_PAGING``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

from aiohttp import web

from adapters.http.disconnect import cancelled_when_gone
from adapters.http.keys import LIMITERS
from projections.read_model import PAGE_BYTES

BYTE_PAGING = (
    f" A page also ends early, with a `next_cursor`, when its items' data would exceed {PAGE_BYTES} bytes "
    "(2 MiB, weighed as JSON text); a single item always fits. `next_cursor` is null on the last page."
)
"""What the OpenAPI description of a list paged in bytes adds to its ``limit`` paging."""


@asynccontextmanager
async def page_turn(request: web.Request, user: str) -> AsyncIterator[None]:
    """Read and encode a page of data (blobs, schema versions, history, books, processors, jobs, runs) in
    one of ``user``'s turns, waiting for it, and one of the process's steps: a page of up to 2 MiB is
    tens of milliseconds of the loop, so one user's burst of them takes turns instead of the whole loop.
    A request whose client goes away while it waits leaves the queue; the answer is sent after the turn,
    by aiohttp."""
    async with user_turn(request, user), process_step(request):
        yield


@asynccontextmanager
async def user_turn(request: web.Request, user: str) -> AsyncIterator[None]:
    """One of ``user``'s turns (the same as ``page_turn``'s), without a process step: for work that
    mostly waits on the log (a blob as of a past position, the read of a history page), which must not
    hold other users' pages back while the log is slow or stalled (up to ``LOG_WAIT_SECONDS``), but of
    which one user's burst must take turns."""
    pages = request.app[LIMITERS].pages
    async with AsyncExitStack() as held:
        async with cancelled_when_gone(request):
            await held.enter_async_context(pages.slot(user))
        yield


@asynccontextmanager
async def process_step(request: web.Request) -> AsyncIterator[None]:
    """One of the process's steps (``page_turn``'s second half), inside a ``user_turn``: for encoding
    a page read while waiting on the log."""
    pages = request.app[LIMITERS].pages
    async with AsyncExitStack() as held:
        async with cancelled_when_gone(request):
            await held.enter_async_context(pages.step())
        yield
