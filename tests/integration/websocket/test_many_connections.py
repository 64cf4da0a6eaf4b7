"""500 concurrent connections, each on a bucket of its own: each receives exactly its own events.

25 users with 20 connections each (the default per-user cap), one bucket per
connection, two blobs written into every bucket by its owner, interleaved
across users. Every connection must see exactly its two ``blob.created``, in
order, and nothing of anyone else's.
"""

from __future__ import annotations

import asyncio

import aiohttp

from adapters.client import InkstreamClient
from tests.integration.websocket.live import Live
from tests.support.sdk import new_client
from tests.support.system import RunningSystem

USERS, PER_USER, BLOBS = 25, 20, 2


async def test_500_connections_each_receive_exactly_their_own_events(system: RunningSystem) -> None:
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:
        users: list[InkstreamClient] = list(await asyncio.gather(
            *(new_client(system.base_url, "many", session=session) for _ in range(USERS))))
        buckets = await asyncio.gather(*(
            asyncio.gather(*(ink.create_bucket(f"b{i}", "folder") for i in range(PER_USER))) for ink in users))

        async def connect(ink: InkstreamClient, bucket_id: str) -> Live:
            live = await Live.open(session, system.base_url, ink.token)
            await live.subscribe(bucket_id=bucket_id)
            return live

        pairs = [(ink, b.id) for ink, owned in zip(users, buckets) for b in owned]
        lives = await asyncio.gather(*(connect(ink, bucket_id) for ink, bucket_id in pairs))
        assert len(lives) == USERS * PER_USER
        try:
            async def write(ink: InkstreamClient, owned: list[str]) -> list[list[int]]:
                out: list[list[int]] = [[] for _ in owned]
                for round_ in range(BLOBS):
                    for i, bucket_id in enumerate(owned):
                        out[i].append((await ink.create_blob({"r": round_}, bucket_ids=[bucket_id])).position)
                return out

            written = await asyncio.gather(*(write(ink, [b.id for b in owned]) for ink, owned in zip(users, buckets)))
            expected = [positions for per_user in written for positions in per_user]

            async def receive(live: Live, bucket_id: str) -> list[int]:
                got = []
                for message in await live.take(BLOBS, timeout=30):
                    assert message["type"] == "blob.created" and message["data"]["bucket_id"] == bucket_id, message
                    got.append(message["data"]["position"])
                return got

            received = await asyncio.gather(*(receive(live, b) for live, (_, b) in zip(lives, pairs)))
            assert received == expected
            await asyncio.gather(*(live.silent(0.3) for live in lives))  # and nothing of anyone else's
        finally:
            await asyncio.gather(*(live.close() for live in lives), return_exceptions=True)
