"""schemathesis against /openapi.json for the Books routes."""

from __future__ import annotations

import aiohttp

from tests.integration.security.test_openapi_fuzz import run_schemathesis
from tests.support.system import RunningSystem
from tests.support.users import new_user


async def test_book_routes_hold_to_their_openapi_document(system: RunningSystem, http: aiohttp.ClientSession) -> None:
    user = await new_user(http, "fuzz")
    code, output = await run_schemathesis(system, user.token, "^/v1/books", examples=10)
    print(output[-4000:])
    assert code == 0, output[-8000:]
