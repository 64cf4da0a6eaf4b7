"""The one-shot CLI commands run on the same lifecycle as the server roles, minus HTTP and projectors.

They find a running ``inkstream up`` through ``DATA_DIR/runtime.json`` when no
URLs are configured (``adapters.runtime.discovery``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

from adapters.runtime.discovery import resolve
from adapters.runtime.lifecycle import Running, start
from adapters.runtime.settings import Settings


@asynccontextmanager
async def cli_running(settings: Settings) -> AsyncIterator[Running]:
    nats_url, database_url = resolve(settings)
    async with AsyncExitStack() as stack:
        yield await start(stack, settings, nats_url=nats_url, database_url=database_url, project=False,
                          commands=False, connect_timeout=5.0)
