"""Resuming with ``since``: exactly the missed changes, in order, then ``caught_up``, then live ones.

The property: a client that disconnects at random points while another
client keeps writing, and each time resumes from the last position it
received, ends up with exactly the log's changes of its bucket: no gap and no
duplicate at any seam.
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.client import InkstreamClient
from tests.integration.websocket.live import Live
from tests.support.sdk import SignUp
from tests.support.system import RunningSystem


@dataclass
class Writer:
    """Writes into the watched bucket and a noise bucket; remembers (type, position) of every change of the watched one."""

    ink: InkstreamClient
    watched: str
    noise: str
    expected: list[tuple[str, int]] = field(default_factory=list)
    in_watched: list[str] = field(default_factory=list)
    in_noise: list[str] = field(default_factory=list)

    async def write(self, n: int, seed: int) -> None:
        rng = random.Random(seed)
        for _ in range(n):
            op = rng.choice(["create", "create", "noise", "update", "move_out", "move_in", "delete"])
            if op == "create" or (op in ("update", "move_out", "delete") and not self.in_watched):
                blob = await self.ink.create_blob({"n": rng.random()}, bucket_ids=[self.watched])
                self.in_watched.append(blob.id)
                self.expected.append(("blob.created", blob.position))
            elif op == "noise" or (op == "move_in" and not self.in_noise):
                blob = await self.ink.create_blob({"noise": True}, bucket_ids=[self.noise])
                self.in_noise.append(blob.id)
            elif op == "update":
                blob = await self.ink.update_blob(rng.choice(self.in_watched), {"n": rng.random()})
                self.expected.append(("blob.updated", blob.position))
            elif op == "move_out":
                blob_id = self.in_watched.pop(rng.randrange(len(self.in_watched)))
                blob = await self.ink.move_blob(blob_id, self.watched, self.noise)
                self.in_noise.append(blob_id)
                self.expected.append(("blob.moved", blob.position))
            elif op == "move_in":
                blob_id = self.in_noise.pop(rng.randrange(len(self.in_noise)))
                blob = await self.ink.move_blob(blob_id, self.noise, self.watched)
                self.in_watched.append(blob_id)
                self.expected.append(("blob.moved", blob.position))
            else:
                blob_id = self.in_watched.pop(rng.randrange(len(self.in_watched)))
                blob = await self.ink.delete_blob(blob_id)
                self.expected.append(("blob.deleted", blob.position))


async def _read(live: Live, count: int, received: list[tuple[str, int]], timeout: float = 15) -> dict[str, Any] | None:
    """Up to ``count`` pushes into ``received`` (checking ``caught_up`` splits them correctly); the caught_up seen."""
    caught_up = None
    got = 0
    while got < count:
        message = await live.next(timeout)
        if message["type"] == "caught_up":
            assert caught_up is None
            caught_up = message["data"]
            assert all(p <= caught_up["position"] for _, p in received), (received, caught_up)
            continue
        assert message["type"].startswith("blob."), message
        position = message["data"]["position"]
        if caught_up is not None:
            assert position > caught_up["position"]
        received.append((message["type"], position))
        got += 1
    return caught_up


@settings(max_examples=6, deadline=None, suppress_health_check=list(HealthCheck))
@given(cuts=st.lists(st.integers(min_value=0, max_value=6), min_size=1, max_size=4),
       pauses=st.lists(st.sampled_from([0.0, 0.02, 0.1]), min_size=4, max_size=4),
       seed=st.integers(0, 10_000))
async def test_resuming_after_random_disconnects_yields_exactly_the_logs_changes(
    system: RunningSystem, http: aiohttp.ClientSession, sign_up: SignUp, cuts: list[int], pauses: list[float],
    seed: int,
) -> None:
    ink = await sign_up("resume")
    watched, noise = await ink.create_bucket("watched", "folder"), await ink.create_bucket("noise", "folder")
    writer = Writer(ink, watched.id, noise.id)
    received: list[tuple[str, int]] = []

    live = await Live.open(http, system.base_url, ink.token)
    last = (await live.subscribe(bucket_id=watched.id))["position"]
    start = last
    writing = asyncio.create_task(writer.write(30, seed))
    try:
        for cut, pause in zip(cuts, pauses):
            await _read(live, min(cut, max(0, 30 - len(received))), received)
            await live.close()  # disconnect, whatever was in flight is lost
            await asyncio.sleep(pause)  # the writer goes on meanwhile
            if received:
                last = received[-1][1]
            live = await Live.open(http, system.base_url, ink.token)
            subscribed = await live.subscribe(bucket_id=watched.id, since=last)
            assert subscribed["position"] == last
        await writing
        remaining = [e for e in writer.expected if e[1] > last]
        if await _read(live, len(remaining), received) is None:  # everything left came from the replay
            assert (await live.next())["type"] == "caught_up"
        await live.silent(0.1)
    finally:
        writing.cancel()
        await live.close()
    assert received == [e for e in writer.expected if e[1] > start]


async def test_since_replays_the_missed_changes_then_caught_up_then_live(
    system: RunningSystem, http: aiohttp.ClientSession, sign_up: SignUp
) -> None:
    ink = await sign_up("resume")
    bucket = await ink.create_bucket("b", "folder")
    first = await ink.create_blob({"i": 0}, bucket_ids=[bucket.id])
    missed = [await ink.create_blob({"i": i}, bucket_ids=[bucket.id]) for i in range(1, 4)]
    live = await Live.open(http, system.base_url, ink.token)
    assert (await live.subscribe(bucket_id=bucket.id, since=first.position))["position"] == first.position
    replayed = await live.take(3)
    assert [(m["type"], m["data"]["blob_id"], m["data"]["position"]) for m in replayed] == [
        ("blob.created", b.id, b.position) for b in missed]
    caught_up = await live.next()
    assert caught_up["type"] == "caught_up" and caught_up["data"]["bucket_id"] == bucket.id
    assert caught_up["data"]["position"] >= missed[-1].position
    fresh = await ink.create_blob({"i": 4}, bucket_ids=[bucket.id])
    push = await live.next()
    assert (push["type"], push["data"]["position"]) == ("blob.created", fresh.position)
    assert push["data"]["position"] > caught_up["data"]["position"]


async def test_since_replays_a_blob_changed_before_it_was_ever_seen_with_its_whole_state(
    system: RunningSystem, http: aiohttp.ClientSession, sign_up: SignUp
) -> None:
    """An update carries only the new data; the push carries the whole blob, rebuilt from the log."""
    ink = await sign_up("resume")
    bucket = await ink.create_bucket("b", "folder")
    blob = await ink.create_blob({"v": 1}, bucket_ids=[bucket.id])
    updated = await ink.update_blob(blob.id, {"v": 2})
    live = await Live.open(http, system.base_url, ink.token)
    await live.subscribe(bucket_id=bucket.id, since=blob.position)
    push = await live.next()
    assert push["type"] == "blob.updated"
    assert push["data"]["blob"] == {**updated.model_dump(mode="json", exclude={"position"}), "data": {"v": 2}}
    assert (await live.next())["type"] == "caught_up"
