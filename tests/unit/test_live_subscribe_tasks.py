"""A /ws connection forgets a subscribe once it has finished, whatever its outcome."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson

from adapters.http.routes.live import _handle
from adapters.live.outbox import Outbox
from domain.errors import NotFound
from domain.ids import new_id


async def settled(pending: dict[Any, asyncio.Task[None]]) -> None:
    """Until every subscribe has finished (and been forgotten, when it is)."""
    for _ in range(200):
        if all(task.done() for task in pending.values()):
            await asyncio.sleep(0)  # the done callbacks
            return
        await asyncio.sleep(0.01)


class NoSuchTopics:
    """A hub for which nothing exists: every subscribe ends in an error message."""

    def __init__(self) -> None:
        self.opened = 0

    async def open(self, outbox: Outbox, topic: Any, since: int | None) -> Any:
        self.opened += 1
        await asyncio.sleep(0)
        raise NotFound(f"bucket {topic}")


async def test_subscribes_to_ids_that_do_not_exist_leave_nothing_behind() -> None:
    hub, outbox = NoSuchTopics(), Outbox("user", capacity=10_000, transport="ws")
    pending: dict[Any, asyncio.Task[None]] = {}
    for _ in range(1_000):
        _handle(orjson.dumps({"type": "subscribe", "data": {"bucket_id": new_id()}}).decode(), hub, outbox, pending)
    assert len(pending) == 1_000
    await settled(pending)
    assert not pending, f"{len(pending)} finished subscribes still held"
    assert hub.opened == 1_000 and len(outbox) == 1_000, "each got its error"


async def test_a_topic_still_catching_up_is_not_subscribed_twice() -> None:
    gate = asyncio.Event()

    class Slow(NoSuchTopics):
        async def open(self, outbox: Outbox, topic: Any, since: int | None) -> Any:
            self.opened += 1
            await gate.wait()
            raise NotFound("gone")

    hub, outbox = Slow(), Outbox("user", capacity=100, transport="ws")
    pending: dict[Any, asyncio.Task[None]] = {}
    raw = orjson.dumps({"type": "subscribe", "data": {"bucket_id": new_id()}}).decode()
    _handle(raw, hub, outbox, pending)
    _handle(raw, hub, outbox, pending)
    await asyncio.sleep(0.01)
    assert hub.opened == 1 and len(pending) == 1
    gate.set()
    await settled(pending)
    _handle(raw, hub, outbox, pending)  # once finished, the same topic may be asked again
    await asyncio.sleep(0.01)
    assert hub.opened == 2
