"""The worker processes' CPU a request's user code takes (JavaScript transforms, schema validation) is
charged to its user: one request for each 10 ms after the first (``WORKER_MS_PER_REQUEST``).

Those workers serve every user of the process; counted as one request each, a slow transform or schema
run at one account's request rate kept them busy for everyone. Here the rate limit is 20 requests in a
window of 20 s, and a migrate's transform counts to 600 million: about 0.5 s of CPU here, 50 requests'
worth (a machine twice as fast still makes it more than the burst).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest

from tests.support.servers import Database
from tests.support.system import RunningSystem, system_on_own_log
from tests.support.users import new_user

SCHEMA = {"type": "object"}
# a fixed amount of work, not of time: a busy machine stretches the time, not the CPU it takes
SPIN = "function migrate(d) { var x = 0; for (var i = 0; i < 6e8; i++) { x = (x + i) | 0; } d.x = x; return d; }"


@pytest.fixture(scope="module")
async def charged(database: Database) -> AsyncIterator[RunningSystem]:
    async with system_on_own_log(database, run_jobs=False, rate_limit_per_second=1.0, rate_limit_burst=20,
                                 sandbox_timeout_ms=10_000) as (system, _):
        yield system


async def test_a_slow_transform_costs_its_user_requests_by_the_cpu_it_took(charged: RunningSystem) -> None:
    async with aiohttp.ClientSession(base_url=charged.base_url) as http:
        owner, bystander = await new_user(http, "spinner"), await new_user(http, "bystander")

        async def post(path: str, body: dict[str, object]) -> dict[str, object]:
            async with http.post(path, json=body, headers=owner.headers) as r:
                assert r.status in (200, 201), (r.status, await r.text())
                return await r.json()

        await post("/v1/schemas", {"name": "spun", "version": "1.0.0", "schema": SCHEMA})
        await post("/v1/schemas", {"name": "spun", "version": "2.0.0", "schema": SCHEMA,
                                   "migration": {"from_version": "1.0.0", "transform": SPIN}})
        blob = await post("/v1/blobs", {"data": {"n": 1}, "schema_id": "spun@1.0.0"})
        migrated = await post(f"/v1/blobs/{blob['id']}/migrate", {"schema_id": "spun@2.0.0"})  # charged once answered
        assert migrated["schema_id"] == "spun@2.0.0" and migrated["data"]["n"] == 1
        async with http.get("/v1/auth/me", headers=owner.headers) as r:
            assert r.status == 429, "a transform of about 0.5 s of CPU and four requests are more than a burst of 20"
        async with http.get("/v1/auth/me", headers=bystander.headers) as r:
            assert r.status == 200, "and nobody else pays for them"
