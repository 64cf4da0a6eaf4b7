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


async def test_an_update_on_one_api_process_reaches_a_row_the_other_has_read_before(cluster: DevCluster) -> None:
    """Each API process keeps the rows it has read (a blob here) until a projector's commit says
    they changed: a kept row must never hide a later write answered by the other process."""
    one, two = (api.url for api in cluster.apis)
    assert one and two
    stale: list[str] = []
    async with aiohttp.ClientSession() as http:
        async with aiohttp.ClientSession(base_url=one) as first:
            user = await new_user(first, "kept")

        async def blob_edited_in_turns(n: int) -> None:
            async with http.post(f"{one}/v1/blobs", json={"data": {"n": n, "edit": 0}}, headers=user.headers) as r:
                assert r.status == 201, await r.text()
                blob = await r.json()
            for edit in range(1, 21):
                writer, reader = (one, two) if edit % 2 else (two, one)
                for url in (reader, writer):  # both processes have read (and may keep) the row
                    async with http.get(f"{url}/v1/blobs/{blob['id']}", headers=user.headers) as r:
                        assert r.status == 200
                async with http.put(f"{writer}/v1/blobs/{blob['id']}", json={"data": {"n": n, "edit": edit}},
                                    headers=user.headers) as r:
                    assert r.status == 200, await r.text()
                async with http.get(f"{reader}/v1/blobs/{blob['id']}", headers=user.headers) as r:
                    seen = (await r.json())["data"]["edit"]
                    if seen != edit:
                        stale.append(f"blob {n} edit {edit}: read {seen}")

        await asyncio.gather(*(blob_edited_in_turns(n) for n in range(10)))
    assert stale == []


async def test_concurrent_blobs_filed_in_one_bucket_all_land_on_both_api_processes(cluster: DevCluster) -> None:
    """On a replicated stream nats-server lets one message checked against a subject be in flight at
    a time: creations guarded on their bucket would refuse each other (10164). The cluster runs
    without guards (``INKSTREAM_STREAM_REPLICAS`` 3), so fifty at once into one bucket all land."""
    one, two = (api.url for api in cluster.apis)
    assert one and two
    async with aiohttp.ClientSession() as http:
        async with aiohttp.ClientSession(base_url=one) as first:
            user = await new_user(first, "filed")
        async with http.post(f"{one}/v1/buckets", json={"name": "shared", "type": "shelf"},
                             headers=user.headers) as r:
            assert r.status == 201, await r.text()
            bucket = (await r.json())["id"]

        async def create(n: int) -> int:
            async with http.post(f"{(one, two)[n % 2]}/v1/blobs", json={"data": {"n": n}, "bucket_ids": [bucket]},
                                 headers=user.headers) as r:
                return r.status

        statuses = await asyncio.gather(*(create(n) for n in range(50)))
    assert statuses == [201] * 50
