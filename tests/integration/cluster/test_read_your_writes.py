"""A write answered by one API process is seen by a default GET on the other (1,000 pairs)."""

from __future__ import annotations

import asyncio
import time

import aiohttp

from adapters.runtime.dev_cluster import DevCluster
from tests.support.users import new_user

PAIRS, SEQUENCES = 1000, 20


async def test_a_write_on_one_api_process_is_read_on_the_other(cluster: DevCluster) -> None:
    one, two = (api.url for api in cluster.apis)
    assert one and two
    stale: list[str] = []
    async with aiohttp.ClientSession() as http:
        async with aiohttp.ClientSession(base_url=one) as first:
            user = await new_user(first, "ryw")

        async def sequence(n: int) -> None:
            for i in range(PAIRS // SEQUENCES):
                writer, reader = (one, two) if (n + i) % 2 == 0 else (two, one)
                async with http.post(f"{writer}/v1/buckets", json={"name": f"ryw-{n}-{i}", "type": "shelf"},
                                     headers=user.headers) as r:
                    assert r.status == 201, await r.text()
                    bucket = await r.json()
                async with http.get(f"{reader}/v1/buckets/{bucket['id']}", headers=user.headers) as r:
                    if r.status != 200 or (await r.json())["name"] != bucket["name"]:
                        stale.append(f"{bucket['id']}: {r.status}")

        started = time.monotonic()
        await asyncio.gather(*(sequence(n) for n in range(SEQUENCES)))
        took = time.monotonic() - started
    print(f"\n{PAIRS} pairs (write on one API process, default GET on the other, {SEQUENCES} at a time) in "
          f"{took:.1f} s: {len(stale)} reads missed their write")
    assert stale == []
