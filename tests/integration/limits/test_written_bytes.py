"""A user's request bodies are limited in bytes too: the request rate bounds how often one account
writes, not how much, and everything written stays in the log for good.

A system of its own with a 1 MiB burst of bytes refilled at 64 KiB a second, on the session's log."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest

from tests.support.servers import Database
from tests.support.system import RunningSystem, start_system
from tests.support.users import new_user

KIB = 1024


@pytest.fixture(scope="module")
async def tight(nats_server: str, database: Database) -> AsyncIterator[RunningSystem]:
    running = await start_system(nats_server, await database.new_database(), run_jobs=False,
                                 write_bytes_per_second=64 * KIB, write_bytes_burst=1024 * KIB)
    try:
        yield running
    finally:
        await running.stop()


async def test_bytes_past_the_burst_are_429_and_write_nothing(tight: RunningSystem) -> None:
    async with aiohttp.ClientSession(base_url=tight.base_url) as http:
        writer, other = await new_user(http, "writer"), await new_user(http, "bystander")
        text = "x" * (200 * KIB)
        statuses, retry_after, problem = [], None, None
        for i in range(8):  # 1.6 MB in a burst of 1 MiB
            async with http.post("/v1/blobs", json={"data": {"i": i, "text": text}}, headers=writer.headers) as r:
                statuses.append(r.status)
                if r.status == 429:
                    problem, retry_after = await r.json(), r.headers.get("Retry-After")
        assert statuses[:4] == [201] * 4 and 429 in statuses, statuses
        assert problem is not None and problem["code"] == "rate_limited"
        assert problem["detail"].startswith("rate limit exceeded") and "bytes written" in problem["detail"]
        assert retry_after is not None and int(retry_after) >= 1
        # a refused body wrote nothing
        async with http.get("/v1/blobs", params={"limit": "50"}, headers=writer.headers) as r:
            assert len((await r.json())["items"]) == statuses.count(201)
        # small requests still pass (the request rate is its own limit), and other users are not held
        async with http.get("/v1/auth/me", headers=writer.headers) as r:
            assert r.status == 200
        async with http.post("/v1/blobs", json={"data": {"text": text}}, headers=other.headers) as r:
            assert r.status == 201
