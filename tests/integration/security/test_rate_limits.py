"""Per-user rate limits, failed-login limits, and login timing that does not reveal accounts."""

from __future__ import annotations

import asyncio
import statistics
import time
import uuid
from collections.abc import AsyncIterator

import aiohttp
import pytest

from tests.support.servers import Database
from tests.support.system import RunningSystem, start_system
from tests.support.users import new_user


@pytest.fixture(scope="module")
async def strict_system(nats_server: str, database: Database) -> AsyncIterator[RunningSystem]:
    """A second API with tight limits, on the same log and a database of its own."""
    running = await start_system(
        nats_server, await database.new_database(), rate_limit_per_second=2, rate_limit_burst=5,
        login_failures_per_minute=3,
    )
    try:
        yield running
    finally:
        await running.stop()


async def test_a_user_over_the_limit_gets_429_with_retry_after(strict_system: RunningSystem) -> None:
    async with aiohttp.ClientSession(base_url=strict_system.base_url) as http:
        user = await new_user(http)
        statuses = []
        retry_after = None
        for _ in range(12):
            async with http.get("/v1/auth/me", headers=user.headers, params={"consistency": "eventual"}) as r:
                statuses.append(r.status)
                if r.status == 429:
                    body = await r.json()
                    assert body["code"] == "rate_limited" and body["detail"].startswith("rate limit exceeded")
                    retry_after = r.headers.get("Retry-After")
        assert statuses[:5].count(429) == 0, statuses
        assert 429 in statuses and retry_after is not None and int(retry_after) >= 1
        other = await new_user(http, "other")  # limits are per user
        async with http.get("/v1/auth/me", headers=other.headers) as r:
            assert r.status == 200


async def test_failed_logins_are_limited_per_account(strict_system: RunningSystem) -> None:
    async with aiohttp.ClientSession(base_url=strict_system.base_url) as http:
        user = await new_user(http)
        statuses = []
        for _ in range(5):
            async with http.post("/v1/auth/login", json={"email": user.email, "password": "wrong-guess"}) as r:
                statuses.append(r.status)
        assert statuses[:3] == [401, 401, 401] and statuses[-1] == 429, statuses


async def test_login_timing_does_not_reveal_whether_the_email_exists(http: aiohttp.ClientSession) -> None:
    users = await asyncio.gather(*(new_user(http, "timing") for _ in range(50)))

    async def timed(email: str) -> float:
        started = time.perf_counter()
        async with http.post("/v1/auth/login", json={"email": email, "password": "not the password"}) as r:
            assert r.status in (401, 429)
        return time.perf_counter() - started

    known, unknown = [], []
    for i in range(50):
        # alternate so drift in machine load hits both sides alike; one try per
        # account keeps the failed-login limit out of the measurement
        known.append(await timed(users[i].email))
        unknown.append(await timed(f"nobody-{uuid.uuid4().hex[:10]}@example.com"))
    m_known, m_unknown = statistics.median(known), statistics.median(unknown)
    print(f"login medians: existing {m_known*1000:.1f} ms, unknown {m_unknown*1000:.1f} ms")
    assert abs(m_known - m_unknown) <= 0.2 * max(m_known, m_unknown)
