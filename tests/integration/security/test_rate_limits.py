"""Per-user rate limits, failed-login limits, and login timing that does not reveal accounts.

Requests come from several loopback addresses (127.0.0.x): the limits per
client address see them as different clients, as they would see strangers.
"""

from __future__ import annotations

import asyncio
import math
import statistics
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

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
        login_failures_per_minute=3, login_account_failures_per_minute=8,
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


@pytest.fixture(scope="module")
async def anonymous_strict_system(nats_server: str, database: Database) -> AsyncIterator[RunningSystem]:
    """An API whose limit per address for unauthenticated traffic is tight."""
    running = await start_system(
        nats_server, await database.new_database(), anonymous_rate_limit_per_second=0.5,
        anonymous_rate_limit_burst=10,
    )
    try:
        yield running
    finally:
        await running.stop()


@asynccontextmanager
async def client_at(system: RunningSystem, address: str) -> AsyncIterator[aiohttp.ClientSession]:
    """An HTTP session whose connections come from ``address`` (any 127.0.0.0/8 address is local)."""
    connector = aiohttp.TCPConnector(local_addr=(address, 0), force_close=True)
    async with aiohttp.ClientSession(base_url=system.base_url, connector=connector) as http:
        yield http


async def login_status(http: aiohttp.ClientSession, email: str, password: str) -> int:
    async with http.post("/v1/auth/login", json={"email": email, "password": password}) as r:
        return r.status


async def test_concurrent_wrong_passwords_cannot_race_past_the_limit(strict_system: RunningSystem) -> None:
    """The check and the spend are one step: 40 guesses at once get at most the 3 allowed 401s."""
    async with aiohttp.ClientSession(base_url=strict_system.base_url) as http:
        user = await new_user(http)
        statuses = await asyncio.gather(*(login_status(http, user.email, "wrong-guess") for _ in range(40)))
    print(f"40 concurrent wrong passwords: {statuses.count(401)} x 401, {statuses.count(429)} x 429")
    assert statuses.count(401) <= 4 and statuses.count(429) >= 36, statuses  # 3, and one more if a token refilled


async def test_guesses_from_elsewhere_do_not_lock_the_owner_out(strict_system: RunningSystem) -> None:
    async with client_at(strict_system, "127.0.0.2") as owner:
        user = await new_user(owner)
        assert await login_status(owner, user.email, user.password) == 200  # the owner's usual address

        # 150 guesses from one stranger: 3 reach the password check, the rest are refused
        async with client_at(strict_system, "127.0.0.3") as stranger:
            stranger_statuses = [await login_status(stranger, user.email, f"guess-{i}") for i in range(150)]
        assert stranger_statuses.count(401) <= 4 and stranger_statuses[-1] == 429
        assert await login_status(owner, user.email, user.password) == 200

        # the same spread over many addresses meets the ceiling per account (8), not 3 per address
        spread = []
        for n in range(10, 16):
            async with client_at(strict_system, f"127.0.0.{n}") as stranger:
                spread += [await login_status(stranger, user.email, "guess") for _ in range(3)]
        assert spread.count(401) <= 8 - stranger_statuses.count(401) + 1 and 429 in spread, spread

        # ...which locks out new addresses, but never the owner where they logged in before
        async with client_at(strict_system, "127.0.0.20") as new_place:
            assert await login_status(new_place, user.email, user.password) == 429
        assert await login_status(owner, user.email, user.password) == 200
        # and a wrong password of the owner's own still counts (per address)
        assert await login_status(owner, user.email, "typo") == 401


async def test_successful_logins_spend_nothing(strict_system: RunningSystem) -> None:
    async with aiohttp.ClientSession(base_url=strict_system.base_url) as http:
        user = await new_user(http)
        # (one at a time: a try in flight holds its token until the password is checked)
        assert [await login_status(http, user.email, user.password) for _ in range(10)] == [200] * 10
        assert [await login_status(http, user.email, "wrong") for _ in range(3)] == [401] * 3


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


async def me_status(http: aiohttp.ClientSession, headers: dict[str, str]) -> int:
    # default consistency: a user registered just before is read (eventual could answer 404 on a busy machine)
    async with http.get("/v1/auth/me", headers=headers) as r:
        if r.status == 429:
            assert int(r.headers["Retry-After"]) >= 1 and (await r.json())["code"] == "rate_limited"
        return r.status


async def test_bad_tokens_are_limited_per_address_and_good_ones_per_user(anonymous_strict_system: RunningSystem) -> None:
    system = anonymous_strict_system
    async with client_at(system, "127.0.0.41") as elsewhere:
        user = await new_user(elsewhere)  # registering costs .41 one request
    forged = {"Authorization": "Bearer " + user.token[:-4] + "AAAA"}
    anonymous = system.services.limiters.anonymous
    fallbacks = getattr(anonymous, "fallbacks", 0)
    async with client_at(system, "127.0.0.40") as attacker:
        began = time.monotonic()
        statuses = [await me_status(attacker, forged) for _ in range(40)]
        elapsed = time.monotonic() - began
        # on a machine too busy for the shared counters to answer within their timeout, the process
        # decides alone and counts the timed-out adds once more: stricter than the burst, never looser
        shared = getattr(anonymous, "fallbacks", 0) == fallbacks
        # the burst, and what the rate refills meanwhile (0.5/s: more only on a slow, busy machine)
        allowed = 10 + math.ceil(0.5 * elapsed) + 1
        print(f"40 bad-token requests from one address in {elapsed:.1f} s: {statuses.count(401)} x 401, "
              f"{statuses.count(429)} x 429 (at most {allowed} may pass)")
        assert statuses[:10] == [401] * 10 or not shared, statuses
        assert statuses[0] == 401 and statuses.count(401) <= allowed and 429 in statuses[-3:], statuses
        # once the address is over its limit, neither a missing token nor a login gets through
        assert await me_status(attacker, {}) == 429
        async with attacker.post("/v1/auth/login", json={"email": user.email, "password": user.password}) as r:
            assert r.status == 429
        # a valid token is limited per user, not per address: it still works from there
        assert await me_status(attacker, user.headers) == 200

@pytest.fixture(scope="module")
async def few_sign_ins(nats_server: str, database: Database) -> AsyncIterator[RunningSystem]:
    """Three password checks per client, one more every ten seconds."""
    running = await start_system(nats_server, await database.new_database(), sign_in_rate_per_second=0.1,
                                 sign_in_burst=3)
    try:
        yield running
    finally:
        await running.stop()


async def test_a_client_gets_so_many_password_checks_and_then_429(few_sign_ins: RunningSystem) -> None:
    """Each sign-in is an argon2id hash of about 30 ms: one address may ask for fewer than a process makes
    (25 a second by default, bursts of 200), so that it cannot keep everyone else's logins waiting."""
    async with aiohttp.ClientSession(base_url=few_sign_ins.base_url) as http:
        users = [await new_user(http, "checked") for _ in range(2)]
        async with http.post("/v1/auth/login", json={"email": users[0].email, "password": users[0].password}) as r:
            assert r.status == 200, "the third password check"
        async with http.post("/v1/auth/login", json={"email": users[1].email, "password": users[1].password}) as r:
            body = await r.json()
            assert r.status == 429 and body["code"] == "rate_limited", body
            assert "too many sign-ins" in body["detail"] and int(r.headers["Retry-After"]) >= 1
        async with http.get("/v1/auth/me", headers=users[1].headers) as r:
            assert r.status == 200, "a signed-in user's requests are not sign-ins"
