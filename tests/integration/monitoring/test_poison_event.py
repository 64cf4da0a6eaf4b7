"""A poison event halts its projection visibly: /health names it, the metric says so,
and the other projections keep going."""

from __future__ import annotations

import asyncio
import shutil
from datetime import datetime, timezone

import aiohttp

from domain.ids import new_id
from domain.recorded import NewEvent
from tests.support.servers import Database, start_nats
from tests.support.system import start_system


async def test_a_poison_event_halts_the_projection_and_health_names_it(database: Database) -> None:
    # A log of its own: the poison event must not reach the session's other systems.
    server, root = await start_nats()
    assert server.url
    system = await start_system(server.url, await database.new_database())
    try:
        # An event the blobs projection cannot apply (as a bug or a bad upcaster would leave in the log).
        bad = NewEvent(type="Blob.Created", version=1, at=datetime.now(timezone.utc), data={"unexpected": True})
        appended = await system.services.store.append("blob", new_id(), bad, 0, new_id())
        blobs = next(r for r in system.running.runners if r.name == "blobs")
        async with asyncio.timeout(30):
            while blobs.state.status != "halted":
                await asyncio.sleep(0.1)
        async with aiohttp.ClientSession(base_url=system.base_url) as http:
            async with http.get("/health") as r:
                health = await r.json()
            async with http.get("/metrics") as r:
                metrics = await r.text()
        assert r.status == 200
        assert health["status"] == "unhealthy" and "projection:blobs" in health["failing"], health
        assert health["checks"]["projections"]["blobs"]["status"] == "halted"
        # the error and its position are for operators (log, projection_checkpoints), not in /health
        assert blobs.state.error_position == appended.position and blobs.state.error
        assert 'projection_halted{projection="blobs"} 1.0' in metrics
        assert health["checks"]["projections"]["books"]["status"] == "running"
        # the other projections went past the poison event
        books = next(r for r in system.running.runners if r.name == "books")
        async with asyncio.timeout(10):
            while books.state.position < appended.position:
                await asyncio.sleep(0.05)
    finally:
        await system.stop()
        await server.stop()
        shutil.rmtree(root, ignore_errors=True)
