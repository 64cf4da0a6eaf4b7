"""Backpressure and limits, on a system of their own with small limits.

A connection that cannot keep up is closed with 4408 and resumes with
``since``; a peer that stops answering pings is closed; a message over the
size limit closes with 1009; connections and subscriptions per user are
capped; SSE sends keep-alive comments; /metrics counts connections and pushes.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import orjson
import pytest

from adapters.client import InkstreamClient
from tests.integration.websocket.live import Live
from tests.integration.websocket.sse import EventStream
from tests.support.sdk import new_client
from tests.support.servers import Database
from tests.support.system import RunningSystem, start_system


@pytest.fixture(scope="module")
async def small(nats_server: str, database: Database) -> AsyncIterator[RunningSystem]:
    dsn = await database.new_database()
    running = await start_system(
        nats_server, dsn, live_queue_size=3, live_max_connections_per_user=2, live_max_subscriptions_per_user=2,
        ws_heartbeat_seconds=2.0, ws_max_message_bytes=1024, sse_keepalive_seconds=0.3,
        rate_limit_per_second=1000.0, rate_limit_burst=2000,
    )
    try:
        yield running
    finally:
        await running.stop()


@pytest.fixture
async def author(small: RunningSystem, http: aiohttp.ClientSession) -> InkstreamClient:
    return await new_client(small.base_url, "limits", session=http)


async def _gauge(http: aiohttp.ClientSession, system: RunningSystem, name: str) -> float:
    async with http.get(system.base_url + "/metrics") as response:
        text = await response.text()
    found = re.search(rf"^{name} (\S+)$", text, re.M)
    assert found, name
    return float(found.group(1))


async def test_a_client_that_cannot_keep_up_is_closed_with_4408_and_resumes_with_since(
    small: RunningSystem, http: aiohttp.ClientSession, author: InkstreamClient
) -> None:
    bucket = await author.create_bucket("busy", "folder")
    slow = await Live.open(http, small.base_url, author.token)
    start = (await slow.subscribe(bucket_id=bucket.id))["position"]
    created: list[int] = []
    for _ in range(10):  # bursts until a batch of pushes outruns a queue of 3
        blobs = await asyncio.gather(*(author.create_blob({"i": i}, bucket_ids=[bucket.id]) for i in range(40)))
        created += [b.position for b in blobs]
        code, seen = await _drain_until_closed(slow)
        if code is not None:
            break
    assert code == 4408
    async with http.get(small.base_url + "/metrics") as response:
        assert re.search(r'^live_overflows_total\{transport="ws"\} [1-9]', await response.text(), re.M)
    pushed = [m["data"]["position"] for m in seen if m["type"] == "blob.created"]
    assert pushed == sorted(pushed) and len(pushed) < len(created)
    # resume with since: the rest arrives, nothing twice
    again = await Live.open(http, small.base_url, author.token)
    last = pushed[-1] if pushed else start
    await again.subscribe(bucket_id=bucket.id, since=last)
    rest: list[int] = []
    while True:
        message = await again.next()
        if message["type"] == "caught_up":
            break
        rest.append(message["data"]["position"])
    assert pushed + rest == sorted(created)


async def _drain_until_closed(live: Live) -> tuple[int | None, list[dict[str, Any]]]:
    """What is buffered, and the close code if the server closed (None when still open)."""
    seen: list[dict[str, Any]] = []
    while True:
        try:
            async with asyncio.timeout(0.5):
                frame = await live.ws.receive()
        except TimeoutError:
            return None, seen
        if frame.type == aiohttp.WSMsgType.TEXT:
            seen.append(orjson.loads(frame.data))
            continue
        return live.ws.close_code, seen


async def test_a_peer_that_stops_answering_pings_is_closed(
    small: RunningSystem, http: aiohttp.ClientSession, author: InkstreamClient
) -> None:
    before = await _gauge(http, small, "websocket_connections_active")
    dead = await Live.open(http, small.base_url, author.token, autoping=False)
    assert await _gauge(http, small, "websocket_connections_active") == before + 1
    async with asyncio.timeout(10):
        while True:
            frame = await dead.ws.receive()
            if frame.type == aiohttp.WSMsgType.PING:
                continue  # never answered
            assert frame.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR), frame
            break
    async with asyncio.timeout(5):
        while await _gauge(http, small, "websocket_connections_active") != before:
            await asyncio.sleep(0.05)


async def test_a_message_over_the_size_limit_closes_with_1009(
    small: RunningSystem, http: aiohttp.ClientSession, author: InkstreamClient
) -> None:
    live = await Live.open(http, small.base_url, author.token)
    await live.send("subscribe", bucket_id="x" * 2000)
    code, _ = await live.closed()
    assert code == 1009


async def test_connections_and_subscriptions_per_user_are_capped(
    small: RunningSystem, http: aiohttp.ClientSession, author: InkstreamClient
) -> None:
    buckets = [await author.create_bucket(f"b{i}", "folder") for i in range(3)]
    first = await Live.open(http, small.base_url, author.token)
    second = await Live.open(http, small.base_url, author.token)
    third = await Live.open(http, small.base_url)
    await third.send("auth", token=author.token)
    code, seen = await third.closed()
    assert code == 4429 and seen[0]["data"]["code"] == "rate_limited"
    async with http.get(small.base_url + "/v1/events", params={"bucket_id": buckets[0].id},
                        headers={"Authorization": f"Bearer {author.token}"}) as response:
        assert response.status == 429 and (await response.json(content_type=None))["code"] == "rate_limited"

    await first.subscribe(bucket_id=buckets[0].id)
    await second.subscribe(bucket_id=buckets[1].id)
    await first.send("subscribe", bucket_id=buckets[2].id)
    refused = await first.next()
    assert (refused["type"], refused["data"]["code"]) == ("error", "rate_limited")
    await second.send("unsubscribe", bucket_id=buckets[1].id)
    assert (await second.next())["type"] == "unsubscribed"
    await first.subscribe(bucket_id=buckets[2].id)  # room again, and the connection stayed open
    await second.close()
    fourth = await Live.open(http, small.base_url, author.token)  # a closed connection frees its place
    await fourth.close()
    await first.close()


async def test_sse_sends_keep_alive_comments_and_metrics_count_pushes(
    small: RunningSystem, http: aiohttp.ClientSession, author: InkstreamClient
) -> None:
    bucket = await author.create_bucket("quiet", "folder")
    async with http.get(small.base_url + "/v1/events", params={"bucket_id": bucket.id},
                        headers={"Authorization": f"Bearer {author.token}"}) as response:
        stream = EventStream(response)
        await stream.next()  # subscribed
        assert await _gauge(http, small, "sse_connections_active") == 1
        await asyncio.sleep(1.0)
        blob = await author.create_blob({"late": True}, bucket_ids=[bucket.id])
        event = await stream.next()
        assert event.id == str(blob.position)
        assert "keep-alive" in stream.comments
    async with http.get(small.base_url + "/metrics") as metrics:
        text = await metrics.text()
    assert re.search(r'^live_pushes_total\{transport="sse",type="blob.created"\} [1-9]', text, re.M), text[-2000:]


async def test_pings_are_answered_and_a_flood_of_frames_closes_with_4429(
    small: RunningSystem, http: aiohttp.ClientSession, author: InkstreamClient
) -> None:
    """Pings used to be answered unseen and without bound: a flood of tiny frames from one connection
    kept the event loop busy for everyone. Pings, pongs and binary frames now count against the connection's budget."""
    live = await Live.open(http, small.base_url, author.token, autoping=False)
    await live.ws.ping(b"hello")
    async with asyncio.timeout(5):
        pong = await live.ws.receive()
    assert (pong.type, pong.data) == (aiohttp.WSMsgType.PONG, b"hello")
    for _ in range(1_000):  # past the default burst of 200 frames
        await live.ws.ping(b"")
    code, seen = await live.closed()
    assert code == 4429, (code, seen)
    assert seen and seen[-1]["type"] == "error" and "too many frames" in orjson.dumps(seen[-1]).decode(), seen
    again = await Live.open(http, small.base_url, author.token)  # the user is not held: a new connection works
    await again.ws.close()
