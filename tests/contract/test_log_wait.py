"""The event store waits out a moment without the log (INKSTREAM_LOG_WAIT_SECONDS), on a server of its own.

A leader election on a cluster looks to a client like this: requests time
out or find no responders for a few seconds. A stopped single server is the
same from the client's side, and easy to time.
"""

from __future__ import annotations

import asyncio
import shutil
import time
from collections.abc import AsyncIterator

import nats
import pytest
from nats.js import api

from adapters.jetstream.connection import connect_nats
from adapters.jetstream.event_store import JetStreamEventStore
from adapters.runtime.nats_server import EmbeddedNats
from commands.ports import Unavailable
from domain.ids import new_id
from tests.contract.test_event_store import ev
from tests.support.servers import start_nats


@pytest.fixture
async def own_nats() -> AsyncIterator[EmbeddedNats]:
    server, root = await start_nats()
    try:
        assert server.url
        nc = await nats.connect(server.url)
        await nc.jetstream().add_stream(api.StreamConfig(name="W", subjects=["w.>"], allow_direct=True,
                                                         duplicate_window=120))
        await nc.close()
        yield server
    finally:
        await server.stop()
        shutil.rmtree(root, ignore_errors=True)


async def test_an_append_during_an_outage_shorter_than_the_wait_lands_once(own_nats: EmbeddedNats) -> None:
    assert own_nats.url
    nc = await connect_nats(own_nats.url)
    store = JetStreamEventStore(nc, stream="W", prefix="w", wait_seconds=8)
    try:
        agg = new_id()
        first = await store.append("thing", agg, ev(1), 0, new_id())
        own_nats.kill()
        started = time.monotonic()
        pending = asyncio.create_task(store.append("thing", agg, ev(2), first.position, new_id()))
        await asyncio.sleep(1.5)
        assert not pending.done(), "the append must wait for the log, not answer at once"
        await own_nats.start()
        second = await asyncio.wait_for(pending, 10)
        waited = time.monotonic() - started
        events = await store.load("thing", agg)
        print(f"\nSIGKILLed nats-server for 1.5 s: the append waited {waited:.1f} s and landed at "
              f"{second.position}; the aggregate has {len(events)} events")
        assert [e.position for e in events] == [first.position, second.position]
        assert not second.duplicate
    finally:
        await nc.close()


async def test_an_outage_longer_than_the_wait_is_unavailable_within_it(own_nats: EmbeddedNats) -> None:
    assert own_nats.url
    nc = await connect_nats(own_nats.url)
    store = JetStreamEventStore(nc, stream="W", prefix="w", wait_seconds=1.0)
    try:
        own_nats.kill()
        started = time.monotonic()
        with pytest.raises(Unavailable):
            await store.append("thing", new_id(), ev(1), 0, new_id())
        append_took = time.monotonic() - started
        started = time.monotonic()
        with pytest.raises(Unavailable):
            await store.last_position()
        print(f"\nnats-server down, wait 1 s: the append gave up after {append_took:.2f} s, "
              f"the last position after {time.monotonic() - started:.2f} s")
        assert 0.9 <= append_took < 4
    finally:
        await own_nats.start()
        await nc.close()


async def test_a_retry_after_an_attempt_that_landed_is_recognised(own_nats: EmbeddedNats) -> None:
    """What a retry after a lost ack meets: the first attempt is in the log; the same message
    again (same Msg-Id, same expected sequence) is that attempt, not a conflict."""
    assert own_nats.url
    nc = await connect_nats(own_nats.url)
    store = JetStreamEventStore(nc, stream="W", prefix="w", wait_seconds=2)
    try:
        agg, command = new_id(), new_id()
        base = await store.append("thing", agg, ev(1), 0, new_id())
        landed = await store.append("thing", agg, ev(2), base.position, command)
        again = await store.append("thing", agg, ev(2), base.position, command)
        assert again.duplicate and again.position == landed.position
        assert len(await store.load("thing", agg)) == 2
    finally:
        await nc.close()
