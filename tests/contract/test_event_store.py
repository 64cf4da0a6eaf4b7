"""The event store against a real nats-server (the contract of the EventStore port)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import datetime, timezone

import nats
import pytest
from nats.aio.client import Client
from nats.js import api

from adapters.jetstream.event_store import JetStreamEventStore
from commands.ports import EventTooLarge, Guard
from domain.errors import ConcurrencyError
from domain.ids import new_id
from domain.recorded import NewEvent


def ev(version: int, **data: object) -> NewEvent:
    return NewEvent(type="Thing.Changed", version=version, at=datetime.now(timezone.utc), data=dict(data), actor="u1")


async def test_append_then_load_round_trips_every_field(private_store: JetStreamEventStore) -> None:
    agg = new_id()
    first = await private_store.append("thing", agg, ev(1, n=1, text="é"), 0, new_id())
    second = await private_store.append("thing", agg, ev(2, n=2), first.position, new_id())
    loaded = await private_store.load("thing", agg)
    assert [r.position for r in loaded] == [first.position, second.position]
    assert [r.data for r in loaded] == [{"n": 1, "text": "é"}, {"n": 2}]
    assert loaded[0].type == "Thing.Changed" and loaded[0].version == 1 and loaded[0].actor == "u1"
    assert loaded[0].aggregate_type == "thing" and loaded[0].aggregate_id == agg


async def test_whether_an_aggregate_has_events_after_a_position(private_store: JetStreamEventStore) -> None:
    """What the read cache checks on every use: nothing after the kept position, or something came since."""
    agg, other = new_id(), new_id()
    positions: list[int] = []
    others = 0
    for n in range(1, 4):
        positions.append((await private_store.append("thing", agg, ev(n, n=n), positions[-1] if positions else 0,
                                                     new_id())).position)
        others = (await private_store.append("thing", other, ev(n), others, new_id())).position  # interleaved
    assert await private_store.has_events_after("thing", agg, 0)
    assert await private_store.has_events_after("thing", agg, positions[0])
    assert await private_store.has_events_after("thing", agg, positions[-1] - 1)
    assert not await private_store.has_events_after("thing", agg, positions[-1]), "the other aggregate's later events do not count"
    assert not await private_store.has_events_after("thing", agg, others + 1000)
    assert not await private_store.has_events_after("thing", new_id(), 0)


async def test_the_last_event_of_an_aggregate_at_or_before_a_position(private_store: JetStreamEventStore) -> None:
    """Where a load at a past position ends (the version whose rung it starts from): one Direct
    Get, also for a position past the log's end, where the server answers nothing at first."""
    agg, other = new_id(), new_id()
    positions: list[int] = []
    others = 0
    for n in range(1, 4):
        others = (await private_store.append("thing", other, ev(n), others, new_id())).position  # interleaved
        positions.append((await private_store.append("thing", agg, ev(n, n=n), positions[-1] if positions else 0,
                                                     new_id())).position)
    for n, position in enumerate(positions, start=1):
        for asked in (position, position + 1):  # its own position, and the other aggregate's event after it
            last = await private_store.last_before("thing", agg, asked)
            assert last is not None and (last.position, last.version, last.data) == (position, n, {"n": n})
    assert await private_store.last_before("thing", agg, positions[0] - 1) is None, "not written yet there"
    last = await private_store.last_before("thing", agg, positions[-1] + 10_000)
    assert last is not None and last.position == positions[-1], "a position past the log's end"
    assert await private_store.last_before("thing", agg, 0) is None
    assert await private_store.last_before("thing", new_id(), positions[-1]) is None


async def test_the_last_event_before_a_position_past_the_end_while_the_log_grows(
    private_store: JetStreamEventStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Asked past the log's end, the server answers nothing at first; if the aggregate gets events
    before the second question, the one now at the asked position is the answer, not "none"."""
    agg = new_id()
    first = await private_store.append("thing", agg, ev(1), 0, new_id())
    asked = first.position + 1  # past the log's end when asked
    real = private_store._direct_get
    questions = 0

    async def growing(request: dict[str, object], timeout: float, charged: bool = True) -> object:
        nonlocal questions
        questions += 1
        answer = await real(request, timeout, charged)
        if questions == 1:  # between the first question and the next, two more events of the aggregate
            second = await private_store.append("thing", agg, ev(2), first.position, new_id())
            await private_store.append("thing", agg, ev(3), second.position, new_id())
        return answer

    monkeypatch.setattr(private_store, "_direct_get", growing)
    last = await private_store.last_before("thing", agg, asked)
    assert last is not None and (last.position, last.version) == (asked, 2)


async def test_loading_an_unknown_aggregate_gives_no_events(private_store: JetStreamEventStore) -> None:
    assert await private_store.load("thing", new_id()) == []


async def test_concurrent_appends_at_the_same_expectation_exactly_one_wins(private_store: JetStreamEventStore) -> None:
    agg = new_id()
    base = await private_store.append("thing", agg, ev(1), 0, new_id())
    results = await asyncio.gather(
        *(private_store.append("thing", agg, ev(2, writer=i), base.position, new_id()) for i in range(10)),
        return_exceptions=True,
    )
    wins = [r for r in results if not isinstance(r, BaseException)]
    losses = [r for r in results if isinstance(r, BaseException)]
    assert len(wins) == 1
    assert len(losses) == 9 and all(isinstance(e, ConcurrencyError) for e in losses)
    assert len(await private_store.load("thing", agg)) == 2


async def test_new_aggregate_expectation_zero_refuses_an_existing_one(private_store: JetStreamEventStore) -> None:
    agg = new_id()
    await private_store.append("thing", agg, ev(1), 0, new_id())
    with pytest.raises(ConcurrencyError):
        await private_store.append("thing", agg, ev(1), 0, new_id())


async def test_a_guarded_creation_lands_only_while_the_guarded_aggregate_is_unchanged(
        private_store: JetStreamEventStore) -> None:
    """A blob filed in a bucket is appended with the bucket's last position as its guard: the log
    refuses it when the bucket changed in between (deleted, say), and a retry of one that landed is
    still recognised as the same append."""
    bucket = new_id()
    at = (await private_store.append("bucket", bucket, ev(1), 0, new_id())).position
    guard = Guard("bucket", bucket, at)
    command, filed = new_id(), new_id()
    first = await private_store.append("blob", filed, ev(1), 0, command, guard=guard)
    assert not first.duplicate
    again = await private_store.append("blob", new_id(), ev(1), 0, command, guard=guard)
    assert again.duplicate and again.position == first.position, "a retry lands once"

    await private_store.append("bucket", bucket, ev(2, deleted=True), at, new_id())  # the bucket changes
    blob = new_id()
    with pytest.raises(ConcurrencyError, match=f"bucket {bucket}"):
        await private_store.append("blob", blob, ev(1), 0, new_id(), guard=guard)
    assert await private_store.load("blob", blob) == [], "nothing appended"
    # the same message again after a lost ack (the store's own retry): found as ours on its subject
    retried = await private_store.append("blob", filed, ev(1), 0, command, guard=guard)
    assert retried.duplicate and retried.position == first.position, "the landed one, even with a stale guard"
    with pytest.raises(ValueError):  # a guard only takes the place of a creation's own check
        await private_store.append("blob", first_id := new_id(), ev(2), first.position, new_id(), guard=guard)
    assert await private_store.load("blob", first_id) == []


async def test_the_same_command_id_twice_stores_one_event(private_store: JetStreamEventStore) -> None:
    agg, command = new_id(), new_id()
    first = await private_store.append("thing", agg, ev(1), 0, command)
    # a retry after a lost ack: same command id, same (now stale) expectation
    again = await private_store.append("thing", agg, ev(1), 0, command)
    assert again.position == first.position and again.duplicate
    assert len(await private_store.load("thing", agg)) == 1
    assert await private_store.last_position() == first.position


async def test_a_retried_creation_under_another_id_is_recognised(private_store: JetStreamEventStore) -> None:
    command = new_id()
    first = await private_store.append("thing", new_id(), ev(1), 0, command)
    again = await private_store.append("thing", new_id(), ev(1), 0, command)
    assert again.duplicate and again.position == first.position
    original = await private_store.event_at(again.position)
    assert original is not None and original.command_id == command


async def test_read_all_yields_every_later_event_in_order(private_store: JetStreamEventStore) -> None:
    positions = []
    for i in range(30):
        appended = await private_store.append("thing", new_id(), ev(1, i=i), 0, new_id())
        positions.append(appended.position)
    start = positions[10]
    seen = []
    stream = private_store.read_all(start)
    async for record in stream:
        seen.append(record)
        if len(seen) == len(positions) - 10:
            break
    await stream.aclose()
    assert [r.position for r in seen] == positions[10:]
    assert [r.data["i"] for r in seen] == list(range(10, 30))


async def test_read_all_then_delivers_live_events(private_store: JetStreamEventStore) -> None:
    stream = private_store.read_all(1)
    later = asyncio.ensure_future(stream.__anext__())
    await asyncio.sleep(0.2)
    appended = await private_store.append("thing", new_id(), ev(1, live=True), 0, new_id())
    record = await asyncio.wait_for(later, 5)
    assert record.position == appended.position and record.data == {"live": True}
    await stream.aclose()


async def test_load_of_an_aggregate_with_1000_events(private_store: JetStreamEventStore) -> None:
    agg = new_id()
    position = 0
    for version in range(1, 1001):
        position = (await private_store.append("thing", agg, ev(version, v=version), position, new_id())).position
        if version % 100 == 0:  # interleave another aggregate so the subject is not contiguous
            await private_store.append("thing", new_id(), ev(1), 0, new_id())
    loaded = await private_store.load("thing", agg)
    assert [r.version for r in loaded] == list(range(1, 1001))
    assert loaded[-1].position == position
    halfway = await private_store.load("thing", agg, until_position=loaded[499].position)
    assert len(halfway) == 500
    rest = await private_store.load("thing", agg, from_position=loaded[499].position)  # what a snapshot needs
    assert [r.version for r in rest] == list(range(500, 1001))
    assert await private_store.load("thing", agg, from_position=position + 1) == []


@pytest.fixture
async def own_connection_store(nats_server: str) -> AsyncIterator[tuple[JetStreamEventStore, Client]]:
    """A store on a connection of its own: a message the server refuses as too large would
    close the connection, and that must not disturb the session's other tests."""
    nc = await nats.connect(nats_server)
    tag = uuid.uuid4().hex[:10]
    await nc.jetstream().add_stream(api.StreamConfig(name=f"P{tag}", subjects=[f"p{tag}.>"], allow_direct=True))
    try:
        yield JetStreamEventStore(nc, stream=f"P{tag}", prefix=f"p{tag}"), nc
    finally:
        await nc.jetstream().delete_stream(f"P{tag}")
        await nc.close()


@pytest.mark.parametrize("over", ["by its data", "with its headers"])
async def test_an_event_over_the_log_limit_is_payload_too_large_and_nothing_is_stored(
    own_connection_store: tuple[JetStreamEventStore, Client], over: str
) -> None:
    store, nc = own_connection_store
    limit = nc.max_payload  # from the server's INFO (1 MiB by default)
    size = limit + 10 if over == "by its data" else limit - 200  # the data alone would fit
    before = await store.last_position()
    with pytest.raises(EventTooLarge) as refused:
        await store.append("thing", new_id(), ev(1, text="x" * size), 0, new_id())
    assert refused.value.limit == limit and f"{limit} bytes" in refused.value.reason
    assert await store.last_position() == before
    # the connection is still fine: the next event lands
    assert nc.is_connected
    assert (await store.append("thing", new_id(), ev(1, n=1), 0, new_id())).position == before + 1


async def test_a_span_of_the_log_reads_exactly_its_events_in_order(private_store: JetStreamEventStore) -> None:
    agg = new_id()
    position = 0
    for n in range(1, 8):
        position = (await private_store.append("thing", agg, ev(n, n=n), position, new_id())).position
    first = position - 6
    span = [r async for batch in private_store.read_span(first + 2, first + 5) for r in batch]
    assert [(r.position, r.data["n"]) for r in span] == [(first + i, i + 1) for i in range(2, 6)]
    assert [r async for r in private_store.read_span(first + 5, first + 4)] == []


async def _span_of(store: JetStreamEventStore, first: int, last: int) -> list[tuple[int, str, object, str]]:
    return [(r.position, r.type, r.data, r.aggregate_id) async for batch in store.read_span(first, last) for r in batch]


async def test_a_long_span_read_raw_equals_the_ordered_consumers_and_leaves_no_consumer(
    private_store: JetStreamEventStore, nc: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Several megabytes, so the server's flow control pauses the raw read and is answered."""
    from adapters.jetstream import span_reader

    aggs = [new_id() for _ in range(20)]
    positions = {a: 0 for a in aggs}
    for n in range(3000):
        agg = aggs[n % 20]
        positions[agg] = (await private_store.append("thing", agg, ev(n // 20 + 1, n=n, pad="x" * 1500),
                                                     positions[agg], new_id())).position
    last = max(positions.values())
    first = last - 2999
    js = nc.jetstream()
    name = private_store._stream
    assert span_reader.usable(nc)  # the session's server: plain TCP, a password
    raw = await _span_of(private_store, first + 5, last)
    assert [p for p, *_ in raw] == list(range(first + 5, last + 1))
    assert (await js.stream_info(name)).state.consumer_count == 0

    monkeypatch.setattr(span_reader, "usable", lambda nc: False)  # the ordered consumer alone
    assert await _span_of(private_store, first + 5, last) == raw


async def test_a_raw_span_that_breaks_is_finished_by_an_ordered_consumer(
    private_store: JetStreamEventStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    from adapters.jetstream import span_reader

    agg, position = new_id(), 0
    for n in range(1, 2501):
        position = (await private_store.append("thing", agg, ev(n, n=n), position, new_id())).position
    first = position - 2499
    whole = await _span_of(private_store, first, position)
    real = span_reader._Frames.messages

    async def breaks(self, expected, end):  # type: ignore[no-untyped-def]
        async for batch in real(self, expected, end):
            yield batch[:7]
            raise span_reader.SpanBroken(batch[6].position, "cut short by the test")

    monkeypatch.setattr(span_reader._Frames, "messages", breaks)
    assert await _span_of(private_store, first, position) == whole
    assert [p for p, *_ in whole] == list(range(first, position + 1))
