"""Session fixtures: a real nats-server and a real PostgreSQL for the whole run."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import AsyncIterator

import aiohttp
import nats
import pytest

from adapters.client import InkstreamClient
from adapters.sandbox.pool import SandboxPool
from adapters.jetstream.event_store import JetStreamEventStore
from adapters.jetstream.streams import apply_streams, load_stream_specs
from tests.support.servers import Database, start_nats
from tests.support.fixtures import Seeded, load_schemas
from tests.support.sdk import SignUp, new_client
from tests.support.system import RunningSystem, start_system


@pytest.fixture(scope="session")
async def nats_server() -> AsyncIterator[str]:
    server, root = await start_nats()
    try:
        assert server.url
        yield server.url
    finally:
        await server.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
async def database() -> AsyncIterator[Database]:
    db = Database()
    await db.start()
    try:
        yield db
    finally:
        await db.stop()


@pytest.fixture(scope="session")
async def pg_dsn(database: Database) -> str:
    return database.dsn


@pytest.fixture(scope="session")
async def sandbox() -> AsyncIterator[SandboxPool]:
    """One JavaScript sandbox (two worker processes, 500 ms, 32 MB) for the tests that need V8 but no servers."""
    pool = SandboxPool(workers=2, timeout_ms=500, max_memory_mb=32)
    await pool.start()
    try:
        yield pool
    finally:
        await pool.close()


@pytest.fixture(scope="session")
async def nc(nats_server: str) -> AsyncIterator[nats.aio.client.Client]:
    client = await nats.connect(nats_server, max_reconnect_attempts=-1, reconnect_time_wait=0.25)
    await apply_streams(client, load_stream_specs())
    try:
        yield client
    finally:
        await client.drain()


@pytest.fixture
async def private_store(nc: nats.aio.client.Client) -> JetStreamEventStore:
    """An event store on a stream of its own, for tests that count the whole log."""
    from nats.js import api

    tag = uuid.uuid4().hex[:10]
    name, prefix = f"T{tag}", f"t{tag}"
    await nc.jetstream().add_stream(
        api.StreamConfig(name=name, subjects=[f"{prefix}.>"], allow_direct=True, duplicate_window=120)
    )
    return JetStreamEventStore(nc, stream=name, prefix=prefix)


@pytest.fixture(scope="session")
async def system(nats_server: str, database: Database, nc: nats.aio.client.Client) -> AsyncIterator[RunningSystem]:
    """The whole system (API + projectors) on the session's servers, over real HTTP."""

    dsn = await database.new_database()
    running = await start_system(nats_server, dsn)
    try:
        yield running
    finally:
        await running.stop()


@pytest.fixture
async def http(system: RunningSystem) -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(base_url=system.base_url) as session:
        yield session


@pytest.fixture
def sign_up(system: RunningSystem, http: aiohttp.ClientSession) -> SignUp:
    """``ink = await sign_up("author")``: a new user's SDK client, on the test's HTTP session."""

    async def make(prefix: str = "user", **options: object) -> InkstreamClient:
        return await new_client(system.base_url, prefix, session=http, **options)

    return make


@pytest.fixture(scope="session")
async def seeded(system: RunningSystem) -> Seeded:
    """The fixture schemas (tests/fixtures/schemas.json), registered through the API once per run."""

    return await load_schemas(system.base_url)
