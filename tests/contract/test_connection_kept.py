"""Reading much of the log at once keeps the process's connection (against the real nats-server).

The server cuts a client connection that has 64 MiB waiting to be written to
it (a slow consumer), and every request in flight on it fails, everyone's
appends included. What the process asks for at once is bounded so that never
happens: cursors catching up, and concurrent loads of a large aggregate.

A new process starts its projections and the job triggers from position 0,
each on a cursor of its own, all on the process's one NATS connection. When
every cursor was a push consumer, the server had up to 32 MiB in flight per
cursor for a connection it allows 64 MiB of pending writes: while the event
loop was busy, the server cut the connection as a slow consumer, again and
again, and every request in flight on it failed. These tests start a server of
their own (its log is read afterwards) and block the loop the way projecting
large events does.
"""

from __future__ import annotations

import asyncio
import shutil
import time
from collections.abc import AsyncIterator
from datetime import datetime, timezone

import nats
import pytest
from nats.aio.client import Client

from adapters.jetstream.event_store import JetStreamEventStore
from adapters.jetstream.streams import apply_streams, load_stream_specs
from adapters.runtime.nats_server import EmbeddedNats
from commands.ports import Unavailable
from domain.ids import new_id
from domain.recorded import NewEvent
from tests.support.servers import start_nats

KIB = 1024
BIG = 900 * KIB
EVENTS = 90  # about 80 MiB: more than the server lets one connection have pending
CURSORS = 9  # eight projections and the triggers


def ev(i: int, text: str) -> NewEvent:
    return NewEvent(type="Thing.Changed", version=1, at=datetime.now(timezone.utc), data={"i": i, "text": text},
                    actor="u1")


@pytest.fixture
async def own_server() -> AsyncIterator[tuple[EmbeddedNats, Client]]:
    server, root = await start_nats()
    assert server.url
    nc = await nats.connect(server.url, max_reconnect_attempts=-1, reconnect_time_wait=0.25)
    await apply_streams(nc, load_stream_specs())
    try:
        yield server, nc
    finally:
        await nc.close()
        await server.stop()
        shutil.rmtree(root, ignore_errors=True)


async def _fill(store: JetStreamEventStore, count: int) -> list[int]:
    sem = asyncio.Semaphore(8)

    async def one(i: int) -> int:
        async with sem:
            return (await store.append("thing", new_id(), ev(i, f"{i}" + "x" * BIG), 0, new_id())).position

    return sorted(await asyncio.gather(*(one(i) for i in range(count))))


async def _large_aggregate(store: JetStreamEventStore) -> str:
    """One aggregate of eight events of 900 KiB (about 7 MiB)."""
    agg, last = new_id(), 0
    for version in range(1, 9):
        event = NewEvent(type="Thing.Changed", version=version, at=datetime.now(timezone.utc),
                         data={"text": "x" * BIG}, actor="u1")
        last = (await store.append("thing", agg, event, last, new_id())).position
    return agg


async def _read_busily(store: JetStreamEventStore, start: int, end: int) -> list[int]:
    """Every position from ``start`` to ``end`` as a cursor hands them out, holding the loop for a while
    after each batch (what projecting a batch of large events does)."""
    cursor = await store.open_cursor(start)
    positions: list[int] = []
    try:
        while not positions or positions[-1] < end:
            batch = await cursor.next_batch(50, timeout=10)
            assert batch, f"no event within 10 s after {positions[-1:] or start}"
            positions += [r.position for r in batch]
            time.sleep(0.05)  # noqa: ASYNC251 - on purpose: a busy event loop does not read its socket
    finally:
        await cursor.close()
    return positions


async def test_cursors_catching_up_on_large_events_keep_the_connection(
    own_server: tuple[EmbeddedNats, Client],
) -> None:
    server, nc = own_server
    store = JetStreamEventStore(nc)
    written = await _fill(store, EVENTS)
    first, last = written[0], written[-1]
    log_start = server.log_path.stat().st_size

    readers = await asyncio.gather(*(_read_busily(store, first, last) for _ in range(CURSORS)))

    assert all(positions == list(range(first, last + 1)) for positions in readers)
    assert_kept(server, nc, log_start)


def assert_kept(server: EmbeddedNats, nc: Client, log_start: int) -> None:
    server_log = server.log_path.read_bytes()[log_start:].decode(errors="replace")
    assert "Slow Consumer" not in server_log
    assert nc.stats["reconnects"] == 0


async def test_many_concurrent_loads_of_a_large_aggregate_keep_the_connection(
    own_server: tuple[EmbeddedNats, Client],
) -> None:
    """40 loads of an aggregate of 7 MiB at once (one account's burst of ``?as_of=`` reads), on a busy
    loop: each batched Direct Get is bounded, and so is how many are in flight (``ReceiveBudget``)."""
    server, nc = own_server
    store = JetStreamEventStore(nc)
    agg = await _large_aggregate(store)
    log_start = server.log_path.stat().st_size

    async def load() -> int:
        records, _ = await store.load_page("thing", agg, max_bytes=4 * KIB * KIB)
        time.sleep(0.02)  # noqa: ASYNC251 - on purpose: the loop's other work
        return len(records)

    counts = await asyncio.gather(*(load() for _ in range(40)))

    assert set(counts) == {4}  # 4 MiB of 900 KiB events each
    assert_kept(server, nc, log_start)


async def test_a_cursor_that_falls_behind_at_the_tail_pages_again_and_misses_nothing(
    own_server: tuple[EmbeddedNats, Client],
) -> None:
    _, nc = own_server
    store = JetStreamEventStore(nc)
    start = await store.last_position() + 1
    cursor = await store.open_cursor(start, behind_bytes=256 * KIB)
    try:
        assert await cursor.next_batch(10, timeout=0.2) == []
        assert cursor.pushed  # at the tail: following a push consumer
        written = [(await store.append("thing", new_id(), ev(i, "y" * 100 * KIB), 0, new_id())).position
                   for i in range(20)]  # 2 MiB while the reader does not read
        await asyncio.sleep(0.5)
        pages = cursor.pages
        got: list[int] = []
        while len(got) < len(written):
            batch = await cursor.next_batch(5, timeout=5)
            assert batch
            got += [r.position for r in batch]
        assert got == written
        assert cursor.pages > pages  # what did not fit its queue was read again as pages
        assert cursor.pushed  # and then it was back at the tail
        later = (await store.append("thing", new_id(), ev(99, "z"), 0, new_id())).position
        assert [r.position for r in await cursor.next_batch(5, timeout=5)] == [later]
    finally:
        await cursor.close()


async def test_a_load_given_up_on_keeps_its_share_of_the_budget_until_its_replies_are_in(
    own_server: tuple[EmbeddedNats, Client],
) -> None:
    """A timed-out Direct Get's replies may still be on their way: its bytes are not handed to the next
    request (a retry) until its last reply has arrived."""
    _, nc = own_server
    writer = JetStreamEventStore(nc)
    agg = await _large_aggregate(writer)
    capacity = 6 * KIB * KIB
    impatient = JetStreamEventStore(nc, publish_timeout=0.001, receive_bytes=capacity)
    with pytest.raises(Unavailable):
        await impatient.load_page("thing", agg, max_bytes=4 * KIB * KIB)
    budget = impatient._receiving  # noqa: SLF001 - what the connection is promised, seen from here
    assert budget.free < capacity  # still held: the server is sending
    for _ in range(100):
        if budget.free == capacity:
            break
        await asyncio.sleep(0.05)
    assert budget.free == capacity  # given back once the last reply came
