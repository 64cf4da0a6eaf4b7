"""What the one-shot CLI commands need: the log, the codec, the read-model DSN."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from nats.aio.client import Client

from adapters.jetstream.connection import connect_nats
from adapters.jetstream.event_store import JetStreamEventStore
from adapters.runtime.endpoints import resolve
from adapters.runtime.settings import Settings
from adapters.runtime.wiring import aggregates
from domain.base import EventCodec


@dataclass
class CliContext:
    nc: Client
    store: JetStreamEventStore
    codec: EventCodec
    database_url: str


@asynccontextmanager
async def cli_context(settings: Settings) -> AsyncIterator[CliContext]:
    nats_url, database_url = resolve(settings)
    nc = await connect_nats(nats_url, name="inkstream-cli")
    try:
        yield CliContext(nc, JetStreamEventStore(nc), EventCodec(aggregates()), database_url)
    finally:
        await nc.drain()
