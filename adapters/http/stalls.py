"""Writing to a client that may stop reading: a streamed answer gives up on a client that takes nothing.

``await response.write(chunk)`` waits for the transport's buffer to drain, for as long as it takes;
a client that stops reading (or never reads) keeps the handler, and whatever it holds, alive for
good. An export holds its whole book and one of its user's export slots, so a few accounts opening
exports they never read could hold gigabytes. Progress, not time, is what counts: a slow reader
that keeps taking bytes is served however long it takes; one that takes nothing for
``stall_seconds`` is cut off.

Progress is what is still to be delivered shrinking: the transport's own buffer and, on Linux, the
socket's send queue in the kernel (``SIOCOUTQ``: bytes not yet acknowledged by the client). The
transport's buffer alone moves only when the kernel's queue, which grows to megabytes, has room
again: a client reading 20 KB/s looked stalled for a minute at a time. Even the kernel's queue stands
still while a slow client reads what its own receive buffer (megabytes too) already holds, since its
window opens only in large steps: so the stall time is minutes (``INKSTREAM_EXPORT_STALL_SECONDS``),
and what stalled exports may hold is bounded apart (``adapters.http.export_memory``).
"""

from __future__ import annotations

import asyncio
import fcntl
import socket
import struct
import termios
from typing import Any

from aiohttp import web

CHECK_SECONDS = 1.0
"""How often a waiting write looks at whether the client took anything."""


class ClientStalled(Exception):
    """The client took nothing of the answer for the stall time: the connection is closed."""


def _kernel_queue(transport: Any) -> int:
    """Bytes in the socket's send queue not yet acknowledged by the client (0 where it cannot be read)."""
    sock = transport.get_extra_info("socket") if transport is not None else None
    if sock is None:
        return 0
    try:
        return int(struct.unpack("I", fcntl.ioctl(sock.fileno(), termios.TIOCOUTQ, b"\0\0\0\0"))[0])
    except (OSError, ValueError):
        return 0


def _pending(transport: Any) -> int:
    if transport is None:
        return 0
    return transport.get_write_buffer_size() + _kernel_queue(transport)


def _reset(transport: Any) -> None:
    """Close with a reset, not a clean end: over HTTP/1.0 (no chunks, no length) a clean end would make
    the cut-off answer look whole."""
    sock = transport.get_extra_info("socket")
    if sock is not None:
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except (OSError, ValueError):  # closed meanwhile (uvloop: a socket whose fd is -1)
            pass
    transport.abort()


async def write_or_give_up(request: web.Request, response: web.StreamResponse, chunk: bytes,
                           stall_seconds: float) -> None:
    """``response.write(chunk)``, unless the client takes nothing of what waits for it for
    ``stall_seconds``: then the connection is reset and ``ClientStalled`` raised."""
    write = asyncio.ensure_future(response.write(chunk))
    transport = request.transport
    interval = min(CHECK_SECONDS, stall_seconds)
    waiting: int | None = None  # first measured once the write has queued its chunk
    still = 0.0
    try:
        while True:
            done, _ = await asyncio.wait({write}, timeout=interval)
            if done:
                write.result()
                return
            now = _pending(transport)
            if waiting is None or now < waiting:
                waiting, still = now, 0.0
                continue
            waiting = now
            still += interval
            if still >= stall_seconds:
                if transport is not None:
                    _reset(transport)
                raise ClientStalled(f"the client took nothing for {stall_seconds:g} s")
    finally:
        if not write.done():
            write.cancel()
