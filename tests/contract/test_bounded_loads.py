"""Every batched Direct Get of the event store is bounded in bytes (against the real nats-server).

An aggregate may grow to many large events (a blob edited thousands of times);
no single request to the log may pull all of it into memory at once. A spy on a
connection of its own watches the wire: the Direct Get requests the store sends
and the replies the server answers each of them with.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime, timezone

import nats
import orjson
import pytest
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js import api

from adapters.jetstream.event_store import LOAD_MAX_BYTES, JetStreamEventStore, message_size
from commands.ports import EventStore
from domain.ids import new_id
from domain.recorded import NewEvent
from tests.support.memory_store import MemoryEventStore

KIB = 1024
BIG = 900 * KIB  # under the server's max_payload (1 MiB) with the headers
BIG_EVENTS = 7  # 6.2 MiB of them: more than LOAD_MAX_BYTES


def ev(version: int, text: str = "") -> NewEvent:
    return NewEvent(type="Thing.Changed", version=version, at=datetime.now(timezone.utc),
                    data={"v": version, "text": text}, actor="u1")


@dataclass
class Wire:
    """What went over the wire for one stream's Direct Gets: each request and the bytes of its replies."""

    requests: dict[str, dict[str, object]] = field(default_factory=dict)  # reply subject -> request
    replies: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))  # reply subject -> sizes

    def clear(self) -> None:
        self.requests.clear()
        self.replies.clear()

    def exchanges(self) -> list[tuple[dict[str, object], list[int]]]:
        """(request, sizes of the messages answered to it, end-of-batch status excluded), in request order."""
        return [(request, self.replies.get(reply, [])) for reply, request in self.requests.items()]


@pytest.fixture
async def bounded(nats_server: str, nc: Client) -> AsyncIterator[tuple[JetStreamEventStore, Wire, Client]]:
    """A store on a stream of its own (deleted afterwards: it holds megabytes) and a spy on its Direct Gets."""
    tag = uuid.uuid4().hex[:10]
    stream, prefix = f"B{tag}", f"b{tag}"
    await nc.jetstream().add_stream(api.StreamConfig(name=stream, subjects=[f"{prefix}.>"], allow_direct=True))
    wire = Wire()
    spy = await nats.connect(nats_server)

    async def on_request(msg: Msg) -> None:
        assert msg.reply
        wire.requests[msg.reply] = orjson.loads(msg.data)

    async def on_reply(msg: Msg) -> None:
        headers = msg.headers or {}
        if "Status" not in headers:  # a message, not the end of the batch
            wire.replies[msg.subject].append(message_size(msg.data, headers) + len(headers.get("Nats-Subject", "")))

    await spy.subscribe(f"$JS.API.DIRECT.GET.{stream}", cb=on_request)
    await spy.subscribe("_INBOX.>", cb=on_reply)
    await spy.flush()
    try:
        yield JetStreamEventStore(nc, stream=stream, prefix=prefix), wire, spy
    finally:
        await spy.close()
        await nc.jetstream().delete_stream(stream)


async def _settled(spy: Client) -> None:
    """Every message the spy was sent has reached its callbacks."""
    await spy.flush()
    await asyncio.sleep(0.2)


async def _write_large_aggregate(store: EventStore) -> tuple[str, list[int]]:
    """An aggregate of small and large events, another aggregate's events between them."""
    agg, positions = new_id(), []
    for version in range(1, BIG_EVENTS * 2 + 1):
        text = "x" * BIG if version % 2 else f"small {version}"
        positions.append((await store.append("thing", agg, ev(version, text), positions[-1] if positions else 0,
                                             new_id())).position)
        await store.append("thing", new_id(), ev(1, "other"), 0, new_id())
    return agg, positions


async def test_a_load_larger_than_one_request_still_returns_every_event_in_order(
    bounded: tuple[JetStreamEventStore, Wire, Client],
) -> None:
    store, wire, spy = bounded
    agg, positions = await _write_large_aggregate(store)
    await _settled(spy)
    wire.clear()

    loaded = await store.load("thing", agg)
    await _settled(spy)
    assert [r.position for r in loaded] == positions
    assert [r.version for r in loaded] == list(range(1, BIG_EVENTS * 2 + 1))
    assert sum(r.size for r in loaded) > LOAD_MAX_BYTES
    exchanges = wire.exchanges()
    assert len(exchanges) >= 2, "the aggregate is larger than one request may pull"
    for request, sizes in exchanges:
        assert 0 < int(request["max_bytes"]) <= LOAD_MAX_BYTES  # type: ignore[call-overload]
        assert sum(sizes) <= LOAD_MAX_BYTES, (request, sizes)
    assert sum(len(sizes) for _, sizes in exchanges) == len(positions), "no event is read twice"

    # the same from a snapshot's position and up to a past position
    assert [r.position for r in await store.load("thing", agg, from_position=positions[3])] == positions[3:]
    assert [r.position for r in await store.load("thing", agg, until_position=positions[-3])] == positions[:-2]


async def test_read_range_answers_one_bounded_batch_and_the_rest_follows(
    bounded: tuple[JetStreamEventStore, Wire, Client],
) -> None:
    store, wire, spy = bounded
    agg, positions = await _write_large_aggregate(store)
    await _settled(spy)
    wire.clear()

    first = await store.read_range("thing", 1, positions[-1], aggregate_id=agg, limit=1000)
    await _settled(spy)
    assert 0 < len(first) < len(positions), "one request may not pull the whole aggregate"
    assert sum(r.size for r in first) <= LOAD_MAX_BYTES
    assert [r.position for r in first] == positions[:len(first)]
    [(request, sizes)] = wire.exchanges()
    assert sum(sizes) <= LOAD_MAX_BYTES

    got = list(first)
    while got[-1].position < positions[-1]:  # what a live subscription's replay does
        batch = await store.read_range("thing", got[-1].position + 1, positions[-1], aggregate_id=agg, limit=1000)
        assert batch and sum(r.size for r in batch) <= LOAD_MAX_BYTES
        got.extend(batch)
    assert [r.position for r in got] == positions

    # the whole type's events too: the other aggregates' small events are in the same bounded batches
    every = await store.read_range("thing", 1, positions[-1], limit=1000)
    assert every and sum(r.size for r in every) <= LOAD_MAX_BYTES


async def test_has_events_after_asks_for_one_event(bounded: tuple[JetStreamEventStore, Wire, Client]) -> None:
    store, wire, spy = bounded
    agg, positions = await _write_large_aggregate(store)
    await _settled(spy)
    wire.clear()
    assert await store.has_events_after("thing", agg, 0)
    assert not await store.has_events_after("thing", agg, positions[-1])
    await _settled(spy)
    for request, sizes in wire.exchanges():
        assert request["batch"] == 1 and len(sizes) <= 1


@pytest.fixture(params=["jetstream", "memory"])
def store(request: pytest.FixtureRequest, bounded: tuple[JetStreamEventStore, Wire, Client]) -> EventStore:
    return bounded[0] if request.param == "jetstream" else MemoryEventStore()


async def test_a_page_of_an_aggregate_is_bounded_by_count_and_bytes(store: EventStore) -> None:
    """``load(limit=, max_bytes=)``: the first events that fit, the first one always; the same on both stores."""
    agg, positions = await _write_large_aggregate(store)
    sizes = {r.position: r.size for r in await store.load("thing", agg)}

    async def page(**bounds: int) -> list[int]:
        return [r.position for r in await store.load("thing", agg, **bounds)]

    assert await page(limit=3) == positions[:3]
    assert await page(limit=3, from_position=positions[5]) == positions[5:8]
    assert await page(limit=0) == []
    assert await page(max_bytes=1) == positions[:1], "one event always fits"
    two = sizes[positions[0]] + sizes[positions[1]]
    assert await page(max_bytes=two) == positions[:2]
    assert await page(max_bytes=two + sizes[positions[2]] - 1) == positions[:2], "the third would not fit"
    assert await page(max_bytes=6 * 1024 * KIB) == [p for p in positions if sum(
        sizes[q] for q in positions if q <= p) <= 6 * 1024 * KIB]
    assert await page(limit=4, max_bytes=10**9) == positions[:4]
    assert await page(max_bytes=10**9, until_position=positions[2]) == positions[:3]
    # paging through: every event once, in order
    seen: list[int] = []
    while True:
        more = await page(limit=3, max_bytes=2 * BIG, from_position=seen[-1] + 1 if seen else 1)
        if not more:
            break
        seen.extend(more)
    assert seen == positions


async def test_a_fold_of_a_small_aggregate_is_one_request_and_a_large_one_asks_no_empty_page(
    bounded: tuple[JetStreamEventStore, Wire, Client],
) -> None:
    """``load_page`` says when nothing follows, so the repository's fold asks no empty page after the last."""
    store, wire, spy = bounded
    small = new_id()
    for version in range(1, 4):
        await store.append("thing", small, ev(version, "tiny"), 0 if version == 1 else position, new_id())
        position = (await store.load("thing", small))[-1].position
    large, positions = await _write_large_aggregate(store)
    for agg, count in ((small, 3), (large, len(positions))):
        await _settled(spy)
        wire.clear()
        page, more = await store.load_page("thing", agg, max_bytes=LOAD_MAX_BYTES)
        assert [r.version for r in page] == list(range(1, len(page) + 1)) and more == (len(page) < count)
        await _settled(spy)
        wire.clear()
        records: list[int] = []
        while True:  # what the repository's fold does (commands/repository.py ``fold``)
            page, more = await store.load_page("thing", agg, from_position=records[-1] + 1 if records else 1,
                                               max_bytes=LOAD_MAX_BYTES)
            records += [r.position for r in page]
            if not more:
                break
        await _settled(spy)
        assert len(records) == count
        assert all(sizes for _, sizes in wire.exchanges()), "no request answered with nothing"
        if agg == small:
            assert len(wire.exchanges()) == 1
