"""Connecting to NATS the way the log's failure model needs.

Reconnect forever with a short wait: a NATS outage must end in recovery, not in
a client that gave up after 60 tries.
"""

from __future__ import annotations

import asyncio
import contextlib
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
    with contextlib.suppress(Exception):
        async with asyncio.timeout(timeout):
            await nc.drain()
    if not nc.is_closed:
        with contextlib.suppress(Exception):
            await nc.close()


async def _maybe(value: Awaitable[None] | None) -> None:
    if value is not None:
        await value
