"""The one-shot CLI commands run on the same lifecycle as the server roles, minus HTTP and projectors.

They find a running ``inkstream up`` through ``DATA_DIR/runtime.json`` when no
URLs are configured (``adapters.runtime.discovery``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager

from adapters.runtime.discovery import resolve
from adapters.runtime.lifecycle import Running, start, stores_to_open
from adapters.runtime.settings import Settings
from adapters.runtime.stores import StoreKind


@asynccontextmanager
async def cli_running(settings: Settings, also_open: Sequence[StoreKind] = ()) -> AsyncIterator[Running]:
    """The store that answers queries is opened, and ``also_open``."""
    kinds = stores_to_open(settings, project=False, also=also_open)
    nats_url, database_url = resolve(settings, postgres="postgres" in kinds)
    async with AsyncExitStack() as stack:
        yield await start(stack, settings, nats_url=nats_url, database_url=database_url, project=False,
                          also_open=also_open, commands=False, connect_timeout=5.0)
