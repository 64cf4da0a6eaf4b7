"""Connecting to NATS the way the log's failure model needs.

Reconnect forever with a short wait: a NATS outage must end in recovery, not in
a client that gave up after 60 tries.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import nats
import structlog
from nats.aio.client import Client

from adapters.telemetry.redaction import without_password

log = structlog.get_logger("inkstream.nats")


async def connect_nats(
    url: str,
    *,
    name: str = "inkstream",
    on_state: Callable[[str], Awaitable[None] | None] | None = None,
    connect_timeout: float = 2.0,
) -> Client:
    client: list[Client] = []
    shown = without_password(url)

    async def disconnected() -> None:
        if client and (client[0].is_draining or client[0].is_closed):
            return  # our own close, not an outage
        log.warning("nats.disconnected", url=shown)
        if on_state:
            await _maybe(on_state("disconnected"))

    async def reconnected() -> None:
        log.info("nats.reconnected", url=shown)
        if on_state:
            await _maybe(on_state("connected"))

    async def error(exc: Exception) -> None:
        log.debug("nats.error", error=str(exc))

    servers = [part.strip() for part in url.split(",") if part.strip()]  # a cluster: several seed URLs
    nc = await nats.connect(
        servers,
        name=name,
        max_reconnect_attempts=-1,
        reconnect_time_wait=0.25,
        connect_timeout=connect_timeout,
        allow_reconnect=True,
        disconnected_cb=disconnected,
        reconnected_cb=reconnected,
        error_cb=error,
        pending_size=64 * 1024 * 1024,
    )
    client.append(nc)
    return nc


async def close_nats(nc: Client, timeout: float = 5.0) -> None:
    """Drain (deliver what is buffered) and close, bounded: a dead server must not hang a shutdown."""
    await _at_most(nc.drain(), timeout)
    if not nc.is_closed:
        await _at_most(nc.close(), timeout)


async def _at_most(step: Awaitable[None], timeout: float) -> None:
    """Run ``step`` as a task for ``timeout`` s at most, then cancel it; its errors are ignored.

    Not ``async with asyncio.timeout``: nats-py's ``drain`` catches the
    ``CancelledError`` such a timeout throws into it and carries on (flush,
    then close: writes to a server that may be gone), so the bound did not
    hold; a cancellation of our caller is passed on.
    """
    task = asyncio.ensure_future(step)
    task.add_done_callback(_ignore_outcome)
    try:
        await asyncio.wait({task}, timeout=timeout)
    finally:
        if not task.done():
            task.cancel()


def _ignore_outcome(task: asyncio.Future[None]) -> None:
    if not task.cancelled():
        task.exception()  # retrieved: no "exception was never retrieved" for a close that failed


async def _maybe(value: Awaitable[None] | None) -> None:
    if value is not None:
        await value
