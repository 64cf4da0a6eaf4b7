"""The SDK's ``subscribe``: reconnects and resumes by itself, in order, exactly once."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import aiohttp
import pytest

from adapters.client import ForbiddenError, LiveEvent, NotFoundError, TokenExpiredError
from tests.support.sdk import SignUp
from tests.support.system import RunningSystem


async def test_subscribe_survives_the_server_dropping_every_connection(
    system: RunningSystem, http: aiohttp.ClientSession, sign_up: SignUp
) -> None:
    ink = await sign_up("sdk-live")
    bucket = await ink.create_bucket("b", "folder")
    received: list[LiveEvent] = []
    expected: list[int] = []

    async def listen() -> None:
        async for event in ink.subscribe(bucket_id=bucket.id, since=bucket.position):
            received.append(event)
            if len(received) == 12:
                return

    listening = asyncio.create_task(listen())
    for round_ in range(3):
        for i in range(4):
            blob = await ink.create_blob({"round": round_, "i": i}, bucket_ids=[bucket.id])
            expected.append(blob.position)
            if i == 1:
                system.running.live.shutdown()  # every live connection drops (1001); writes go on
        await asyncio.sleep(0.05)
    async with asyncio.timeout(20):
        await listening
    assert [e.position for e in received] == expected
    assert {e.type for e in received} == {"blob.created"}
    assert received[0].blob is not None and received[0].blob["data"] == {"round": 0, "i": 0}


async def test_subscribe_raises_when_the_server_refuses(
    system: RunningSystem, http: aiohttp.ClientSession, sign_up: SignUp
) -> None:
    owner, stranger = await sign_up("sdk-live"), await sign_up("sdk-live")
    theirs = await owner.create_bucket("b", "folder")
    with pytest.raises(ForbiddenError):
        async for _ in stranger.subscribe(bucket_id=theirs.id):
            pass
    with pytest.raises(NotFoundError):
        async for _ in stranger.subscribe(bucket_id="0190a0a0-0000-7000-8000-000000000000"):
            pass
    assert stranger.user_id is not None
    stranger.token = system.services.tokens.issue(stranger.user_id, now=time.time() - 7200).token
    with pytest.raises(TokenExpiredError):
        async for _ in stranger.subscribe(bucket_id=theirs.id):
            pass


async def test_subscribe_ends_when_the_bucket_is_deleted(
    system: RunningSystem, http: aiohttp.ClientSession, sign_up: SignUp
) -> None:
    ink = await sign_up("sdk-live")
    bucket = await ink.create_bucket("b", "folder")
    first = await ink.create_blob({"x": 1}, bucket_ids=[bucket.id])
    await ink.delete_blob(first.id)
    await ink.delete_bucket(bucket.id)

    async def everything() -> list[tuple[str, int]]:
        return [(e.type, e.position) async for e in ink.subscribe(bucket_id=bucket.id, since=bucket.position)]

    # the bucket is gone: subscribing, even from before its deletion, is refused as not found
    with pytest.raises(NotFoundError):
        await everything()

    other = await ink.create_bucket("c", "folder")
    listening = asyncio.create_task(
        asyncio.wait_for(_collect(ink.subscribe(bucket_id=other.id, since=other.position)), 20))
    blob = await ink.create_blob({"x": 2}, bucket_ids=[other.id])
    deleted = await ink.delete_blob(blob.id)
    await ink.delete_bucket(other.id)
    assert await listening == [("blob.created", blob.position), ("blob.deleted", deleted.position)]


async def _collect(events: AsyncIterator[LiveEvent]) -> list[tuple[str, int]]:
    return [(e.type, e.position) async for e in events]
