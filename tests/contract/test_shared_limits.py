"""The counters and marks of shared limits against a real nats-server (streams.yaml's INK_LIMITS and
INK_KNOWN_ADDRESSES, created by the session's ``nc`` fixture)."""

from __future__ import annotations

import asyncio
import uuid

import nats
from nats.aio.client import Client

from adapters.jetstream.shared_limits import JetStreamCounters, JetStreamMarks


async def test_concurrent_adds_from_two_processes_each_see_their_own_total(nats_server: str, nc: Client) -> None:
    other = await nats.connect(nats_server)
    try:
        one, two = JetStreamCounters(nc), JetStreamCounters(other)
        key = f"test.{uuid.uuid4().hex}"
        before = (await nc.jetstream().stream_info("INK_LIMITS")).state.last_seq
        totals = await asyncio.gather(*(c.add(key, 1) for _ in range(100) for c in (one, two)))
        published = (await nc.jetstream().stream_info("INK_LIMITS")).state.last_seq - before
        print(f"\n200 concurrent adds from two connections: {published} increments published")
        assert sorted(totals) == list(range(1, 201)), "each add sees a total of its own: the check cannot be raced"
        assert await one.get(key) == 200 and await two.get(key) == 200
        assert published < 200, "adds to one key while one is in flight go out together"
        assert await one.add(key, -5) == 195
        assert await one.get(f"test.{uuid.uuid4().hex}") == 0
    finally:
        await other.close()


async def test_a_mark_is_seen_by_every_process(nats_server: str, nc: Client) -> None:
    other = await nats.connect(nats_server)
    try:
        key = uuid.uuid4().hex
        assert not await JetStreamMarks(other).seen(key)
        await JetStreamMarks(nc).mark(key)
        assert await JetStreamMarks(other).seen(key)
    finally:
        await other.close()
