"""Seed Task 9 for the MongoDB read store: MongoDB killed while commands stream in.

The system answers queries from MongoDB (``INKSTREAM_READ_STORE=mongo``) and
projects into it and PostgreSQL. With MongoDB SIGKILLed, commands still
succeed (the write path needs only the log), queries answer 503, ``/health``
names ``mongo``; once it is back on the same port and data, the Mongo
projectors resume from their checkpoints and every acknowledged command shows.
"""

from __future__ import annotations

import asyncio
import shutil
import time
from collections.abc import AsyncIterator

import aiohttp
import pytest

from tests.integration.resilience.load import CommandStream, verify_acknowledged
from tests.integration.resilience.test_outages import OPEN_LIMITS, health, wait_until
from tests.support.mongo import MongoServer
from tests.support.servers import Database, scratch_dir, start_nats
from tests.support.system import start_system


@pytest.fixture
async def own_mongo() -> AsyncIterator[MongoServer]:
    root = scratch_dir("ink-mongo-")
    server = MongoServer(storage=root / "data")
    await server.start()
    try:
        yield server
    finally:
        await server.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
async def own_nats() -> AsyncIterator[str]:
    """A log of the test's own: the new Mongo projectors catch up with it alone, not with every earlier
    test's events, which would make this test's time grow with the suite's."""
    server, root = await start_nats()
    assert server.url
    try:
        yield server.url
    finally:
        await server.stop()
        shutil.rmtree(root, ignore_errors=True)


async def test_mongo_killed_commands_go_on_queries_503_and_mongo_projectors_resume(
    own_nats: str, database: Database, own_mongo: MongoServer
) -> None:
    system = await start_system(own_nats, await database.new_database(), mongo_url=own_mongo.database_url(),
                                read_store="mongo", **OPEN_LIMITS)
    stream = CommandStream(system.base_url, workers=3)
    try:
        stream.start()
        await asyncio.sleep(1.0)
        pid = own_mongo.pid
        await own_mongo.kill()
        killed_at = time.monotonic()
        acked_before_outage = len(stream.acked)
        await asyncio.sleep(1.0)
        probe = stream.acked[-1]
        async with aiohttp.ClientSession(base_url=system.base_url) as http:
            async with http.post("/v1/auth/login", json={"email": probe.email, "password": probe.password}) as r:
                assert r.status == 200, "login reads the log only"
                token = (await r.json())["token"]
            headers = {"Authorization": f"Bearer {token}"}
            for params in ({}, {"consistency": "eventual"}):
                async with http.get("/v1/auth/me", headers=headers, params=params) as r:
                    body = await r.json()
                    assert r.status == 503 and body["code"] == "unavailable" and "Retry-After" in r.headers, body
        status, body = await health(system.base_url)
        assert status == 503 and "mongo" in body["failing"] and body["checks"]["postgres"]["status"] == "up", body
        await asyncio.sleep(1.5)
        acked_during = len(stream.acked) - acked_before_outage
        await own_mongo.start()
        back_at = time.monotonic()
        await asyncio.sleep(1.0)
        await stream.stop()
    except BaseException:
        try:
            await stream.stop()
        finally:  # a worker's error must not leave the whole system running past the test
            await system.stop()
        raise
    try:
        last = await system.services.store.last_position()
        names = [p.name for p in system.services.projections]
        mongo = system.running.stores["mongo"]

        async def reached() -> bool:
            return mongo.watch.reached(last, names)

        caught_up = await wait_until(reached, 20)
        found, lost = await verify_acknowledged(system.base_url, stream.acked)
        assert mongo.mongo is not None
        users = await mongo.mongo.db.users.find({}, {"email": 1}).to_list()
        emails = [u["email"] for u in users]
        status, body = await health(system.base_url)
        print(
            f"\nkilled MongoDB pid {pid} (SIGKILL) for {back_at - killed_at:.1f} s; commands acknowledged during the "
            f"outage {acked_during}; statuses {dict(stream.statuses)}; acknowledged {len(stream.acked)}, lost {lost}; "
            f"Mongo read models caught up {caught_up:.1f} s after its return; user documents {len(users)}"
        )
        assert acked_during > 0, "commands must go on while the read-model store is down"
        assert stream.statuses[500] == 0
        assert lost == 0 and len(emails) >= len(stream.acked)
        assert len(set(emails)) == len(emails), "duplicated documents in the read model"
        assert status == 200 and body["checks"]["mongo"]["status"] == "up", body
    finally:
        await system.stop()
