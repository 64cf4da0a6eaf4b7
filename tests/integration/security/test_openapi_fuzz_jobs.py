"""schemathesis against /openapi.json for the Processors, Jobs and Migrations routes, on a system of its own
with a generous per-user rate limit."""

from __future__ import annotations

import aiohttp

from tests.integration.security.test_openapi_fuzz import run_schemathesis
from tests.integration.security.test_openapi_fuzz_content import EXAMPLES
from tests.support.servers import Database
from tests.support.system import start_system
from tests.support.users import new_user


async def test_processor_job_and_migration_routes_hold_to_their_openapi_document(nats_server: str, database: Database) -> None:
    system = await start_system(nats_server, await database.new_database(),
                                rate_limit_per_second=10_000.0, rate_limit_burst=10_000)
    try:
        async with aiohttp.ClientSession(base_url=system.base_url) as http:
            user = await new_user(http, "fuzz")
        code, output = await run_schemathesis(system, user.token, "^/v1/(processors|jobs|migrations)", examples=EXAMPLES)
    finally:
        await system.stop()
    print(output[-4000:])
    assert code == 0, output[-8000:]
