"""Writing to a client that may stop reading: a streamed answer gives up on a client that takes nothing.

``await response.write(chunk)`` waits for the transport's buffer to drain, for as long as it takes;
a client that stops reading (or never reads) keeps the handler, and whatever it holds, alive for
good. An export holds its whole book and one of its user's export slots, so a few accounts opening
exports they never read could hold gigabytes. Progress, not time, is what counts: a slow reader
that keeps taking bytes is served however long it takes; one that takes nothing for
``stall_seconds`` is cut off.
"""

from __future__ import annotations

import asyncio

from aiohttp import web

CHECK_SECONDS = 1.0
"""How often a waiting write looks at whether the client took anything."""


class ClientStalled(Exception):
    """The client took nothing of the answer for the stall time: the connection is closed."""


async def write_or_give_up(request: web.Request, response: web.StreamResponse, chunk: bytes,
                           stall_seconds: float) -> None:
    """``response.write(chunk)``, unless the client takes nothing of what waits for it for
    ``stall_seconds``: then the connection is aborted and ``ClientStalled`` raised."""
    write = asyncio.ensure_future(response.write(chunk))
    transport = request.transport
    waiting = transport.get_write_buffer_size() if transport is not None else 0
    still = 0.0
    try:
        while True:
            done, _ = await asyncio.wait({write}, timeout=min(CHECK_SECONDS, stall_seconds))
            if done:
                write.result()
                return
            now = transport.get_write_buffer_size() if transport is not None else 0
            if now < waiting:
                waiting, still = now, 0.0
            else:
                waiting = now
                still += min(CHECK_SECONDS, stall_seconds)
            if still >= stall_seconds:
                if transport is not None:
                    transport.abort()
                raise ClientStalled(f"the client took nothing for {stall_seconds:g} s")
    finally:
        if not write.done():
            write.cancel()
