"""An export costs its user's request rate by what it sends: one request for each 256 KiB after the first.

Rendering is what an export spends (about 0.1 s of CPU for an 8 MiB book of prose, up to about a second
for one written to cost the most); counted as one request, one account could keep a process busy with
exports back to back. Here the rate limit is 120 requests in a window of 240 s (0.5 a second), and the
book is 32 chapters of 250,000 ``<``: its HTML is 32 MB (every ``<`` is ``&lt;``), 128 requests' worth.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest

from adapters.http.routes.books import EXPORT_BYTES_PER_REQUEST
from tests.support.servers import Database
from tests.support.system import RunningSystem, system_on_own_log
from tests.support.users import new_user

RATE, BURST = 0.5, 120
CHAPTERS, CHAPTER = 32, "<" * 250_000


@pytest.fixture(scope="module")
async def charged(database: Database) -> AsyncIterator[RunningSystem]:
    async with system_on_own_log(database, run_jobs=False, rate_limit_per_second=RATE,
                                 rate_limit_burst=BURST) as (system, _):
        yield system


async def test_an_export_is_charged_by_the_bytes_it_sends(charged: RunningSystem) -> None:
    async with aiohttp.ClientSession(base_url=charged.base_url) as http:
        owner, bystander = await new_user(http, "exporter"), await new_user(http, "bystander")
        async with http.post("/v1/books", json={"title": "Heavy"}, headers=owner.headers) as r:
            assert r.status == 201, await r.text()
            book = await r.json()
        for i in range(CHAPTERS):
            async with http.post(f"/v1/books/{book['id']}/chapters", json={"title": f"c{i}", "content": CHAPTER},
                                 headers=owner.headers) as r:
                assert r.status == 201, await r.text()
                position = (await r.json())["position"]
        params = {"format": "html", "min_position": str(position)}
        async with http.get(f"/v1/books/{book['id']}/export", params=params, headers=owner.headers) as r:
            document = await r.read()
            assert r.status == 200, document[:200]
        assert len(document) // EXPORT_BYTES_PER_REQUEST > BURST - CHAPTERS - 2, "more than the owner had left"
        async with http.get("/v1/auth/me", headers=owner.headers) as r:
            assert r.status == 429, "the export's bytes were charged to its owner"
            assert int(r.headers["Retry-After"]) > 10
        async with http.get("/v1/auth/me", headers=bystander.headers) as r:
            assert r.status == 200, "and to nobody else"
