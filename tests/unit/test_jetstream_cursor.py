"""The log cursor hands out every position once, in order, whatever its push consumer does.

Fakes stand in for the two things the cursor asks of the server (a page of the log, a push
consumer from a position): what is checked is the cursor's own bookkeeping. The real server is in
tests/contract/test_connection_kept.py.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from adapters.jetstream.cursor import JetStreamCursor
from domain.recorded import Recorded

AT = datetime.now(timezone.utc)


@dataclass
class FakeMsg:
    """What the cursor reads of a pushed message: the reply subject carries its stream sequence."""

    position: int
    subject: str = "ink.thing.a"
    data: bytes = b"{}"
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def reply(self) -> str:
        return f"$JS.ACK.INK.c.1.{self.position}.{self.position}.0.0"


def to_recorded(subject: str, position: int, headers: Any, data: bytes) -> Recorded:
    return Recorded(position, "thing", "a", "T", 1, AT, {}, 1, None, None, None, {}, len(data))


@dataclass
class FakeLog:
    last: int
    failing_subscribes: int = 0
    subscribed: list[int] = field(default_factory=list)
    unsubscribed: int = 0
    callback: Any = None

    async def page(self, position: int, count: int) -> tuple[list[Recorded], bool]:
        got = [to_recorded("s", p, None, b"{}") for p in range(position, min(position + count, self.last + 1))]
        return got, bool(got) and got[-1].position < self.last

    async def subscribe(self, position: int, callback: Any) -> Any:
        if self.failing_subscribes:
            self.failing_subscribes -= 1
            raise TimeoutError("the consumer could not be created (an outage)")
        self.subscribed.append(position)
        self.callback = callback
        log = self

        class Sub:
            async def unsubscribe(self) -> None:
                log.unsubscribed += 1

        return Sub()

    async def push(self, *positions: int) -> None:
        for p in positions:
            await self.callback(FakeMsg(p))


def cursor(log: FakeLog, position: int = 1, behind_bytes: int = 1 << 20) -> JetStreamCursor:
    return JetStreamCursor(log.page, log.subscribe, to_recorded, position, behind_bytes=behind_bytes)


async def handed(c: JetStreamCursor, size: int, until: int) -> list[int]:
    out: list[int] = []
    while not out or out[-1] < until:
        batch = await c.next_batch(size, timeout=0.05)
        assert batch, f"nothing after {out[-1:]}"
        out += [r.position for r in batch]
    return out


async def test_a_failed_subscribe_loses_no_page() -> None:
    log = FakeLog(last=5, failing_subscribes=1)
    c = cursor(log)
    assert [r.position for r in await c.next_batch(3, 0.05)] == [1, 2, 3]
    try:
        await c.next_batch(3, 0.05)
    except TimeoutError:
        pass
    assert c.position == 4
    assert [r.position for r in await c.next_batch(3, 0.05)] == [4, 5]
    assert log.subscribed == [6]
    await c.close()


async def test_a_consumer_that_goes_back_is_dropped_at_once_and_paging_resumes() -> None:
    log = FakeLog(last=3)
    c = cursor(log)
    assert await handed(c, 10, 3) == [1, 2, 3] and c.pushed
    log.last = 5
    await log.push(4, 5)
    await log.push(1, 2, 3)  # recreated from position 1 (nats-py's reset before its first delivery)
    await asyncio.sleep(0)
    assert log.unsubscribed == 1  # stopped when it went back, before the reader read on
    log.last = 7
    assert await handed(c, 10, 7) == [4, 5, 6, 7]
    assert log.subscribed == [4, 8]
    await c.close()


async def test_a_consumer_that_skips_is_dropped_and_the_gap_is_paged() -> None:
    log = FakeLog(last=2)
    c = cursor(log)
    assert await handed(c, 10, 2) == [1, 2]
    log.last = 6
    await log.push(3, 5, 6)  # 4 never came
    await asyncio.sleep(0)
    assert log.unsubscribed == 1
    assert await handed(c, 10, 6) == [3, 4, 5, 6]
    await c.close()


async def test_a_reader_that_falls_behind_stops_the_consumer_before_draining() -> None:
    log = FakeLog(last=0)
    c = cursor(log, behind_bytes=5 * len(b"{}ink.thing.a"))
    assert await c.next_batch(10, 0.05) == [] and c.pushed
    log.last = 20
    await log.push(*range(1, 21))
    await asyncio.sleep(0)
    assert log.unsubscribed == 1  # at once: the backlog is not pushed while the reader drains
    assert await handed(c, 3, 20) == list(range(1, 21))
    await c.close()


async def test_a_read_ahead_of_another_size_is_read_again() -> None:
    log = FakeLog(last=3000)
    c = cursor(log)
    assert len(await c.next_batch(1000, 0.05)) == 1000
    assert [r.position for r in await c.next_batch(5, 0.05)] == [1001, 1002, 1003, 1004, 1005]
    await c.close()
