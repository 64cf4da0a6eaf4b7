"""Anonymous /health names each failing check and its state, never the error behind it
(that goes to the log); /ready is 503 while a projection is halted."""

from __future__ import annotations

import asyncio
import shutil
from datetime import datetime, timezone

import aiohttp
import orjson
from structlog.testing import capture_logs

from domain.ids import new_id
from domain.recorded import NewEvent
from tests.support.servers import Database, start_nats, start_throwaway_postgres
from tests.support.system import start_system


async def get(base_url: str, path: str) -> tuple[int, dict, str]:
    async with aiohttp.ClientSession(base_url=base_url) as http:
        async with http.get(path) as r:
            text = await r.text()
            return r.status, orjson.loads(text), text


async def test_health_shows_which_dependency_is_down_but_not_its_error() -> None:
    nats_server, nats_root = await start_nats()
    pg, pg_root = await start_throwaway_postgres()
    assert nats_server.url and pg.dsn
    system = await start_system(nats_server.url, pg.dsn, read_wait_seconds=1.0)
    try:
        await pg.stop("immediate")
        nats_server.kill()
        with capture_logs() as logged:
            status, body, text = await get(system.base_url, "/health")
        assert status == 503 and set(body["failing"]) >= {"nats", "postgres"}, body
        assert body["checks"]["nats"] == {"status": "down"} and body["checks"]["postgres"] == {"status": "down"}
        for leak in ("error", "Errno", "refused", "connect", "127.0.0.1", str(pg.port), str(nats_server.port)):
            assert leak not in text, f"{leak!r} in {text}"
        # the operator finds the reason in the log
        failures = {e["check"]: e for e in logged if e["event"] == "health.check_failed"}
        assert {"nats", "postgres"} <= failures.keys() and all(e["error"] for e in failures.values()), logged
    finally:
        await nats_server.start()
        await pg.start()
        await system.stop()
        await pg.stop()
        await nats_server.stop()
        shutil.rmtree(nats_root, ignore_errors=True)
        shutil.rmtree(pg_root, ignore_errors=True)


async def test_a_halted_projection_is_named_without_its_error_and_makes_ready_503(database: Database) -> None:
    # A log of its own: the poison event must not reach the session's other systems.
    server, root = await start_nats()
    assert server.url
    system = await start_system(server.url, await database.new_database())
    try:
        async with asyncio.timeout(30):
            while (await get(system.base_url, "/ready"))[0] != 200:
                await asyncio.sleep(0.1)
        secret = "s3cr3t-value-from-the-event"
        bad = NewEvent(type="Blob.Created", version=1, at=datetime.now(timezone.utc), data={secret: True})
        await system.services.store.append("blob", new_id(), bad, 0, new_id())
        blobs = next(r for r in system.running.runners if r.name == "blobs")
        async with asyncio.timeout(30):
            while blobs.state.status != "halted":
                await asyncio.sleep(0.1)
        status, body, text = await get(system.base_url, "/health")
        assert status == 503 and "projection:blobs" in body["failing"], body
        assert body["checks"]["projections"]["blobs"]["status"] == "halted"
        assert "error" not in text and secret not in text and "Error" not in text, text
        status, body, text = await get(system.base_url, "/ready")
        assert status == 503 and body["ready"] is False and body["failing"] == ["projection:blobs"], body
        assert secret not in text
    finally:
        await system.stop()
        await server.stop()
        shutil.rmtree(root, ignore_errors=True)
