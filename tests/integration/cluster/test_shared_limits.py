"""Limits hold across API processes: two more ``api`` processes with tight limits join the cluster, and
requests alternate between them. With limits kept per process each would allow its own share again.

Requests come from several loopback addresses (127.0.0.x), which the limits per client address see as
different clients.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiohttp
import pytest

from adapters.runtime.dev_cluster import DevCluster, RoleProcess
from tests.support.users import TestUser, new_user

RATE, BURST = 20, 20  # per user and second
LOGIN_PER_ADDRESS, LOGIN_PER_ACCOUNT = 6, 12  # failed logins per minute
ANONYMOUS_BURST = 20  # per address, refilled at 1/s

STRICT = {
    "INKSTREAM_RATE_LIMIT_PER_SECOND": str(RATE), "INKSTREAM_RATE_LIMIT_BURST": str(BURST),
    "INKSTREAM_LOGIN_FAILURES_PER_MINUTE": str(LOGIN_PER_ADDRESS),
    "INKSTREAM_LOGIN_ACCOUNT_FAILURES_PER_MINUTE": str(LOGIN_PER_ACCOUNT),
    "INKSTREAM_ANONYMOUS_RATE_LIMIT_PER_SECOND": "1", "INKSTREAM_ANONYMOUS_RATE_LIMIT_BURST": str(ANONYMOUS_BURST),
}  # fmt: skip


@pytest.fixture(scope="module")
async def strict(cluster: DevCluster) -> AsyncIterator[list[RoleProcess]]:
    processes = list(await asyncio.gather(cluster.add("api", STRICT), cluster.add("api", STRICT)))
    try:
        yield processes
    finally:
        for process in processes:
            await cluster.remove(process)


@asynccontextmanager
async def client_at(address: str, base_url: str | None = None) -> AsyncIterator[aiohttp.ClientSession]:
    """HTTP from ``address`` (any 127.0.0.0/8 address is local)."""
    connector = aiohttp.TCPConnector(local_addr=(address, 0), force_close=True)
    async with aiohttp.ClientSession(base_url=base_url, connector=connector) as http:
        yield http


async def register(url: str | None, address: str) -> TestUser:
    async with client_at(address, url) as http:
        return await new_user(http, "limits")


async def login(http: aiohttp.ClientSession, url: str, email: str, password: str) -> int:
    async with http.post(f"{url}/v1/auth/login", json={"email": email, "password": password}) as r:
        return r.status


async def test_a_rate_limit_holds_across_api_processes(strict: list[RoleProcess]) -> None:
    urls = [p.url for p in strict]
    user = await register(urls[0], "127.0.0.80")
    served: Counter[str] = Counter()
    statuses: Counter[int] = Counter()
    seconds = 4.0
    end = time.monotonic() + seconds

    async def hammer(url: str) -> None:
        async with aiohttp.ClientSession() as http:
            while time.monotonic() < end:
                async with http.get(f"{url}/v1/auth/me", params={"consistency": "eventual"},
                                    headers=user.headers) as r:
                    statuses[r.status] += 1
                    if r.status == 200:
                        served[url] += 1
                    else:
                        assert r.status == 429 and int(r.headers["Retry-After"]) >= 1
                        await asyncio.sleep(0.01)

    await asyncio.gather(*(hammer(url) for url in urls for _ in range(8)))
    allowed = sum(served.values())
    ceiling = BURST + RATE * seconds  # what one token bucket would allow in the time
    print(f"\none user at {RATE}/s (burst {BURST}) for {seconds:.0f} s through two API processes: {dict(statuses)}; "
          f"allowed {allowed} ({dict(served)} per process); one bucket would allow at most {ceiling:.0f}, "
          f"one per process {2 * ceiling:.0f}")
    assert all(served[url] > 0 for url in urls), "both processes served the user"
    assert allowed <= 1.1 * ceiling, "the processes together allow what one limit allows"
    assert allowed >= 0.8 * RATE * seconds, "and not much less"


async def test_failed_logins_are_counted_across_api_processes(strict: list[RoleProcess]) -> None:
    one, two = (p.url for p in strict)
    assert one and two
    owner = await register(one, "127.0.0.81")
    async with client_at("127.0.0.81") as home:
        assert await login(home, one, owner.email, owner.password) == 200  # the owner's usual address

    # one stranger, alternating processes: the per-address limit, once for both
    async with client_at("127.0.0.82") as stranger:
        guesses = [await login(stranger, (one, two)[i % 2], owner.email, f"guess-{i}") for i in range(12)]
    assert guesses[:LOGIN_PER_ADDRESS] == [401] * LOGIN_PER_ADDRESS and set(guesses[LOGIN_PER_ADDRESS:]) == {429}, guesses

    # more strangers: the account's ceiling, counted over both processes
    spread = []
    for n in range(83, 87):
        async with client_at(f"127.0.0.{n}") as stranger:
            spread += [await login(stranger, (one, two)[i % 2], owner.email, "guess") for i in range(3)]
    assert spread.count(401) == LOGIN_PER_ACCOUNT - LOGIN_PER_ADDRESS and spread[-1] == 429, spread

    # new places are locked out; the owner, known through process one, logs in on process two
    async with client_at("127.0.0.87") as new_place:
        assert await login(new_place, two, owner.email, owner.password) == 429
    async with client_at("127.0.0.81") as home:
        assert await login(home, two, owner.email, owner.password) == 200
    print(f"\nfailed logins at one account through two API processes: one address {Counter(guesses)} "
          f"(limit {LOGIN_PER_ADDRESS}/min per address), four more addresses {Counter(spread)} (limit "
          f"{LOGIN_PER_ACCOUNT}/min per account); the owner's known address still logs in on the other process")


async def test_bad_tokens_are_limited_per_address_across_api_processes(strict: list[RoleProcess]) -> None:
    one, two = (p.url for p in strict)
    user = await register(one, "127.0.0.88")
    forged = {"Authorization": "Bearer " + user.token[:-4] + "AAAA"}
    statuses = []
    async with client_at("127.0.0.89") as attacker:
        for i in range(40):
            async with attacker.get(f"{(one, two)[i % 2]}/v1/auth/me", headers=forged) as r:
                statuses.append(r.status)
    print(f"\n40 bad-token requests from one address through two API processes: {Counter(statuses)} "
          f"(burst {ANONYMOUS_BURST} per address)")
    assert statuses.count(401) <= ANONYMOUS_BURST + 3 and statuses[-1] == 429, statuses
