"""A user's requests are limited by the work they cost, not only by their number: a request that reads
many events from the log counts as many requests.

``GET /v1/blobs/{id}?as_of=`` in the middle of a long history folds every event up to there from the
nearest snapshot or rung below; asked again and again at the request rate it would keep a core busy
for one account. Here the rate limit is 400 requests a second in bursts of 400, a request may read 2
events for the price of one, and the blob has 300 versions: each such read folds about 150 events, so
it costs about 77 requests.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import aiohttp
import pytest

from tests.support.servers import Database
from tests.support.system import RunningSystem, system_on_own_log
from tests.support.users import TestUser, new_user

RATE, BURST, EVENTS_PER_REQUEST = 400, 400, 2
VERSIONS = 300
AS_OF_COST = 1 + (VERSIONS // 2) // EVENTS_PER_REQUEST  # in requests


@pytest.fixture(scope="module")
async def metered(database: Database) -> AsyncIterator[RunningSystem]:
    async with system_on_own_log(database, run_jobs=False, rate_limit_per_second=RATE, rate_limit_burst=BURST,
                                 rate_limit_events_per_request=EVENTS_PER_REQUEST) as (system, _):
        yield system


async def long_blob(http: aiohttp.ClientSession, user: TestUser, versions: int = VERSIONS) -> tuple[str, list[int]]:
    """A blob of ``versions`` versions, and the log position of each."""
    async with http.post("/v1/blobs", json={"data": {"n": 0}}, headers=user.headers) as r:
        assert r.status == 201, await r.text()
        created = await r.json()
    blob_id, positions = created["id"], [created["position"]]
    for n in range(1, versions):
        async with http.put(f"/v1/blobs/{blob_id}", json={"data": {"n": n}}, headers=user.headers) as r:
            assert r.status == 200, await r.text()
            positions.append((await r.json())["position"])
    return blob_id, positions


async def test_reads_deep_in_a_long_history_are_limited_by_the_events_they_fold(metered: RunningSystem) -> None:
    async with aiohttp.ClientSession(base_url=metered.base_url) as http:
        owner, bystander = await new_user(http, "deep-reader"), await new_user(http, "bystander")
        blob_id, positions = await long_blob(http, owner)
        middle = positions[VERSIONS // 2]
        await asyncio.sleep(2 * BURST / RATE)  # writing it cost a request each: the window slides past them

        async def as_of(user: TestUser) -> aiohttp.ClientResponse:
            async with http.get(f"/v1/blobs/{blob_id}", params={"as_of": str(middle)}, headers=user.headers) as r:
                await r.read()
                return r

        started = time.monotonic()
        answers = [await as_of(owner) for _ in range(40)]
        elapsed = time.monotonic() - started
        statuses = [r.status for r in answers]
        served = statuses.count(200)
        print(f"\n40 reads of a {VERSIONS}-version blob as of its middle in {elapsed:.2f} s, {RATE} requests/s in "
              f"bursts of {BURST}, {EVENTS_PER_REQUEST} events a request: {served} served, "
              f"{statuses.count(429)} refused")
        # at most what a burst and the refill meanwhile pay for (each let in before its cost is known:
        # one more at the edge of each refill); counted by number alone, all 40 would pass
        assert served <= (BURST + RATE * elapsed) / AS_OF_COST + 3, statuses
        assert served >= BURST // AS_OF_COST - 1 and statuses[0] == 200 and set(statuses) == {200, 429}, statuses
        assert (await answers[0].json())["data"] == {"n": VERSIONS // 2}, "as it was then"
        refused = answers[statuses.index(429)]
        problem = await refused.json()
        assert problem["code"] == "rate_limited", problem
        retry_after = int(refused.headers["Retry-After"])
        assert 1 <= retry_after <= 2 * BURST / RATE + 1

        async with http.get("/v1/auth/me", headers=bystander.headers) as r:
            assert r.status == 200, "the work is charged to whoever asked for it, not to everyone"
        await asyncio.sleep(retry_after)
        assert (await as_of(owner)).status == 200, "served again once the limit has refilled"


async def test_requests_that_read_little_cost_one_request_each(metered: RunningSystem) -> None:
    """A request may read ``EVENTS_PER_REQUEST`` events for the price of one: reading a short blob as of
    its first version (its event, and the last one before the position) costs one request, so most of a
    burst of them pass, where a handful of reads deep in a long history spend it all."""
    async with aiohttp.ClientSession(base_url=metered.base_url) as http:
        user = await new_user(http, "light")
        blob_id, positions = await long_blob(http, user, versions=3)
        await asyncio.sleep(2 * BURST / RATE)
        statuses = []
        for _ in range(BURST * 7 // 8):
            async with http.get(f"/v1/blobs/{blob_id}", params={"as_of": str(positions[0])},
                                headers=user.headers) as r:
                statuses.append(r.status)
        assert statuses == [200] * len(statuses), statuses
