"""The live router on the in-memory log: job pushes (against the event names of the Job aggregate
of the processors work: Requested, Started, AttemptFailed, Completed, Failed, Cancelled, Retried),
the seam of a subscription with ``since`` under concurrent writes, ownership, and overflow.

``Job`` here is a stand-in with those event names and the fields a push reports; the router
needs nothing else of it (``projections.pushes.JOB_PUSHES`` is the one mapping).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest
from eventsourcing.domain import event

from adapters.live.hub import LiveHub, LiveLimits, SinceOutOfRange
from adapters.live.outbox import Message, Outbox, UserHolding
from adapters.live.replay import CatchUpGate, Replay
from adapters.shared_log import SharedLog
from commands.repository import Context, Repository
from domain.base import EventCodec, InkAggregate
from domain.blob import Blob
from domain.bucket import Bucket
from domain.errors import Forbidden, NotFound
from domain.ids import new_id
from tests.support.memory_store import MemoryEventStore

ALICE, BOB = new_id(), new_id()


class Job(InkAggregate):
    TYPE = "job"

    @event("Requested")
    def __init__(self, owner_id: str, processor_id: str, input_blob_id: str) -> None:
        self.owner_id, self.processor_id, self.input_blob_id = owner_id, processor_id, input_blob_id
        self.status, self.output_blob_id, self.error, self.deleted = "pending", None, None, False

    @event("Started")
    def start(self, attempt: int) -> None:
        self.status = "running"

    @event("AttemptFailed")
    def attempt_failed(self, attempt: int, error: dict[str, str]) -> None:
        self.status = "pending"

    @event("Completed")
    def complete(self, attempt: int, output_blob_id: str) -> None:
        self.status, self.output_blob_id = "completed", output_blob_id

    @event("Failed")
    def fail(self, attempt: int, error: dict[str, str]) -> None:
        self.status, self.error = "failed", dict(error)

    @event("Cancelled")
    def cancel(self, reason: str) -> None:
        self.status = "cancelled"


class Rig:
    def __init__(self, limits: LiveLimits | None = None) -> None:
        self.store = MemoryEventStore()
        self.codec = EventCodec([Bucket, Blob, Job])
        self.repo = Repository(self.store, self.codec)
        self.shared = SharedLog(self.store)
        self.hub = LiveHub(self.shared, self.store, self.codec, limits)

    async def new(self, cls: type[Any], make: Any, user: str = ALICE) -> Any:
        return await self.repo.execute(cls, None, lambda _: make(), Context(user, new_id()))

    async def change(self, cls: type[Any], aggregate_id: str, act: Any, user: str = ALICE) -> int:
        def decide(current: Any) -> Any:
            act(current)
            return current

        return (await self.repo.execute(cls, aggregate_id, decide, Context(user, new_id()))).position


@contextlib.asynccontextmanager
async def running(limits: LiveLimits | None = None) -> AsyncIterator[Rig]:
    rig = Rig(limits)
    tasks = [asyncio.create_task(rig.shared.run()), asyncio.create_task(rig.hub.run())]
    try:
        async with asyncio.timeout(5):
            await rig.hub.started.wait()
        yield rig
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def take(outbox: Outbox, n: int) -> list[Message]:
    out = []
    for _ in range(n):
        message = await outbox.get(timeout=5)
        assert message is not None, [m.type for m in out]
        out.append(message)
    return out


async def test_job_events_are_pushed_with_the_jobs_state_and_only_the_four_named_ones() -> None:
    async with running() as rig:
        blob = await rig.new(Blob, lambda: Blob.create(ALICE, {"in": 1}, None, None, []))
        job = await rig.new(Job, lambda: Job(owner_id=ALICE, processor_id=new_id(), input_blob_id=blob.aggregate.id_str))
        job_id = job.aggregate.id_str
        outbox = rig.hub.connect(ALICE, "test")
        sub = await rig.hub.open(outbox, ("job", job_id), since=job.position)
        await rig.hub.catch_up(sub)
        assert [m.type for m in await take(outbox, 2)] == ["subscribed", "caught_up"]
        started = await rig.change(Job, job_id, lambda j: j.start(attempt=1))
        await rig.change(Job, job_id, lambda j: j.attempt_failed(attempt=1, error={"code": "timeout", "message": "t"}))
        await rig.change(Job, job_id, lambda j: j.start(attempt=2))
        output = new_id()
        completed = await rig.change(Job, job_id, lambda j: j.complete(attempt=2, output_blob_id=output))
        pushes = await take(outbox, 3)
        assert [(m.type, m.position) for m in pushes] == [("job.started", started), ("job.started", started + 2),
                                                           ("job.completed", completed)]
        assert pushes[0].data == {"job_id": job_id, "status": "running", "input_blob_id": blob.aggregate.id_str,
                                  "position": started}
        assert pushes[2].data == {"job_id": job_id, "status": "completed", "input_blob_id": blob.aggregate.id_str,
                                  "output_blob_id": output, "position": completed}

        failing = await rig.new(Job, lambda: Job(owner_id=ALICE, processor_id=new_id(), input_blob_id=blob.aggregate.id_str))
        fid = failing.aggregate.id_str
        await rig.change(Job, fid, lambda j: j.start(attempt=1))
        failed = await rig.change(Job, fid, lambda j: j.fail(attempt=1, error={"code": "sandbox_error", "message": "x"}))
        cancelled_job = await rig.new(Job, lambda: Job(owner_id=ALICE, processor_id=new_id(), input_blob_id=blob.aggregate.id_str))
        cid = cancelled_job.aggregate.id_str
        cancelled = await rig.change(Job, cid, lambda j: j.cancel(reason="by its owner"))
        # replayed from the log with since: the same pushes the live router sends
        other = rig.hub.connect(ALICE, "test")
        for topic in (("job", fid), ("job", cid)):
            sub = await rig.hub.open(other, topic, since=0)
            await rig.hub.catch_up(sub)
        replayed = [m for m in await take(other, 7) if m.is_push]
        assert [(m.type, m.position) for m in replayed] == [("job.started", failed - 1), ("job.failed", failed),
                                                             ("job.cancelled", cancelled)]
        assert replayed[1].data["error"] == {"code": "sandbox_error", "message": "x"}
        assert replayed[2].data["status"] == "cancelled"


async def test_someone_elses_job_or_bucket_is_forbidden_and_an_unknown_one_not_found() -> None:
    async with running() as rig:
        blob = await rig.new(Blob, lambda: Blob.create(BOB, 1, None, None, []), BOB)
        job = await rig.new(Job, lambda: Job(owner_id=BOB, processor_id=new_id(), input_blob_id=blob.aggregate.id_str), BOB)
        bucket = await rig.new(Bucket, lambda: Bucket.create(BOB, "b", "folder", None), BOB)
        outbox = rig.hub.connect(ALICE, "test")
        for topic in (("job", job.aggregate.id_str), ("bucket", bucket.aggregate.id_str)):
            with pytest.raises(Forbidden):
                await rig.hub.open(outbox, topic, None)
        with pytest.raises(NotFound):
            await rig.hub.open(outbox, ("job", new_id()), None)
        with pytest.raises(SinceOutOfRange):
            await rig.hub.open(outbox, ("bucket", bucket.aggregate.id_str), 10_000)
        assert outbox.subscriptions == {}


async def test_the_seam_under_concurrent_writes_has_no_gap_and_no_duplicate() -> None:
    """Subscriptions opened at every moment of a stream of writes, each from an earlier ``since``."""
    async with running(LiveLimits(max_connections_per_user=10_000, max_subscriptions_per_user=10_000)) as rig:
        bucket = await rig.new(Bucket, lambda: Bucket.create(ALICE, "b", "folder", None))
        bucket_id = bucket.aggregate.id_str
        positions: list[int] = []

        async def write() -> None:
            for i in range(200):
                saved = await rig.new(Blob, lambda: Blob.create(ALICE, {"i": i}, None, None, [bucket_id]))
                positions.append(saved.position)
                if i % 7 == 0:
                    await asyncio.sleep(0)

        writing = asyncio.create_task(write())
        subscribers: list[tuple[int, Outbox]] = []
        while not writing.done():
            since = positions[len(positions) // 2] if positions else bucket.position
            outbox = rig.hub.connect(ALICE, "test")
            sub = await rig.hub.open(outbox, ("bucket", bucket_id), since)
            asyncio.create_task(rig.hub.catch_up(sub))
            subscribers.append((since, outbox))
            await asyncio.sleep(0)
        await writing
        assert len(subscribers) > 5
        for since, outbox in subscribers:
            seen: list[int] = []
            caught_up = None
            while not seen or seen[-1] < positions[-1]:
                message = await outbox.get(timeout=5)
                assert message is not None
                if message.type == "caught_up":
                    caught_up = message.position
                elif message.is_push:
                    seen.append(message.position)  # type: ignore[arg-type]
            assert seen == [p for p in positions if p > since]
            assert caught_up is not None


async def test_a_full_queue_overflows_the_connection_instead_of_holding_the_router() -> None:
    async with running(LiveLimits(queue_size=3)) as rig:
        bucket = await rig.new(Bucket, lambda: Bucket.create(ALICE, "b", "folder", None))
        slow, fast = rig.hub.connect(ALICE, "test"), rig.hub.connect(ALICE, "test")
        for outbox in (slow, fast):
            await rig.hub.catch_up(await rig.hub.open(outbox, ("bucket", bucket.aggregate.id_str), None))
        await take(fast, 1)
        written, got = [], []
        for i in range(10):
            saved = await rig.new(Blob, lambda: Blob.create(ALICE, i, None, None, [bucket.aggregate.id_str]))
            written.append(saved.position)
            got += [m.position for m in await take(fast, 1)]
        assert got == written  # the reader that keeps up is not held back by the one that does not
        assert slow.overflowed and slow.failed.is_set()


async def test_a_blob_created_before_the_router_started_is_pushed_whole_when_it_changes() -> None:
    rig = Rig()
    bucket = await rig.new(Bucket, lambda: Bucket.create(ALICE, "b", "folder", None))
    bucket_id = bucket.aggregate.id_str
    blob = await rig.new(Blob, lambda: Blob.create(ALICE, {"v": 1}, None, None, [bucket_id]))
    blob_id = blob.aggregate.id_str
    tasks = [asyncio.create_task(rig.shared.run()), asyncio.create_task(rig.hub.run())]
    try:
        await asyncio.wait_for(rig.hub.started.wait(), 5)
        outbox = rig.hub.connect(ALICE, "test")
        await rig.hub.catch_up(await rig.hub.open(outbox, ("bucket", bucket_id), None))
        await take(outbox, 1)
        updated = await rig.change(Blob, blob_id, lambda b: b.update({"v": 2}))
        [push] = await take(outbox, 1)
        assert (push.type, push.position) == ("blob.updated", updated)
        assert push.data["blob"]["data"] == {"v": 2} and push.data["blob"]["bucket_ids"] == [bucket_id]
        assert push.data["blob"]["version"] == 2 and push.data["blob"]["owner_id"] == ALICE
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


# -- what one user can make the process hold -------------------------------------------------------------

KIB = 1024


async def test_a_slow_reader_of_large_blobs_overflows_on_bytes_long_before_the_message_count() -> None:
    async with running(LiveLimits(queue_size=1000, queue_bytes=300 * KIB)) as rig:
        bucket = await rig.new(Bucket, lambda: Bucket.create(ALICE, "b", "folder", None))
        bucket_id = bucket.aggregate.id_str
        slow, fast = rig.hub.connect(ALICE, "test"), rig.hub.connect(ALICE, "test")
        for outbox in (slow, fast):
            await rig.hub.catch_up(await rig.hub.open(outbox, ("bucket", bucket_id), None))
        await take(fast, 1)
        for i in range(6):
            await rig.new(Blob, lambda: Blob.create(ALICE, {"i": i, "t": "x" * (100 * KIB)}, None, None, [bucket_id]))
            [push] = await take(fast, 1)  # one at a time always fits, even over the byte cap
            assert push.type == "blob.created" and len(push.text()) > 100 * KIB
            assert slow.bytes <= 300 * KIB
        assert slow.overflowed and slow.failed.is_set()  # after three or so messages, not a thousand
        assert fast.bytes == 0 and not fast.overflowed

        alone = rig.hub.connect(ALICE, "test")  # a single message larger than the cap still goes through
        await rig.hub.catch_up(await rig.hub.open(alone, ("bucket", bucket_id), None))
        await take(alone, 1)
        small = LiveLimits(queue_bytes=10 * KIB)
        assert small.queue_bytes < 100 * KIB
        outbox = Outbox(ALICE, 1000, "test", max_bytes=10 * KIB)
        big = Message("blob.created", {"t": "y" * (100 * KIB)}, 1)
        assert outbox.offer(big) and not outbox.overflowed
        assert not outbox.offer(Message("blob.created", {"t": "z"}, 2)) and outbox.overflowed


async def test_one_users_connections_that_do_not_read_share_one_byte_budget_and_others_are_untouched() -> None:
    """Twenty connections that never read could each hold a connection's budget; together they hold
    the user's, and the connections a push no longer fits are closed (4408: they resume with since)."""
    async with running(LiveLimits(queue_size=1000, queue_bytes=300 * KIB, user_queue_bytes=500 * KIB)) as rig:
        alices = await rig.new(Bucket, lambda: Bucket.create(ALICE, "a", "folder", None))
        bobs = await rig.new(Bucket, lambda: Bucket.create(BOB, "b", "folder", None), user=BOB)
        stalled = [rig.hub.connect(ALICE, "test") for _ in range(5)]
        reader = rig.hub.connect(BOB, "test")
        for outbox in stalled:
            await rig.hub.catch_up(await rig.hub.open(outbox, ("bucket", alices.aggregate.id_str), None))
        await rig.hub.catch_up(await rig.hub.open(reader, ("bucket", bobs.aggregate.id_str), None))
        await take(reader, 1)
        holding = stalled[0].user
        assert holding is not None and all(o.user is holding for o in stalled) and reader.user is not holding
        for i in range(8):
            await rig.new(Blob, lambda: Blob.create(ALICE, {"i": i, "t": "x" * (100 * KIB)}, None, None,
                                                    [alices.aggregate.id_str]))
            await rig.new(Blob, lambda: Blob.create(BOB, {"i": i, "t": "y" * (100 * KIB)}, None, None,
                                                    [bobs.aggregate.id_str]), user=BOB)
            [push] = await take(reader, 1)
            assert push.type == "blob.created"
            # the user's 500 KiB, and a connection that held nothing took one message whatever the
            # others held; not 5 x 300 KiB
            assert holding.bytes <= 600 * KIB
            assert holding.bytes == sum(o.held_bytes for o in stalled)
        assert any(o.overflowed for o in stalled)
        assert not reader.overflowed
        # what a closed connection held no longer counts; the last one gone, nothing is left
        for outbox in stalled:
            rig.hub.disconnect(outbox)
            assert holding.bytes == sum(o.held_bytes for o in stalled if not o.closed)
        assert holding.bytes == 0


def test_over_its_budget_a_user_loses_the_connection_that_holds_something_not_the_one_that_kept_up() -> None:
    holding = UserHolding(10 * KIB)
    first, second = Outbox(ALICE, 1000, "test", user=holding), Outbox(ALICE, 1000, "test", user=holding)
    assert first.offer(Message("blob.created", {"t": "y" * (100 * KIB)}, 1))  # the user held nothing
    assert second.offer(Message("blob.created", {"t": "z"}, 2))  # second kept up: it held nothing
    assert not second.offer(Message("blob.created", {"t": "w"}, 3)) and second.overflowed
    assert not first.overflowed and holding.bytes > 100 * KIB
    first.close()
    assert holding.bytes == 0


async def test_catch_ups_of_one_user_fill_half_of_its_budget_and_go_on_as_any_of_its_connections_reads() -> None:
    async with running(LiveLimits(queue_bytes=1024 * KIB, user_queue_bytes=600 * KIB)) as rig:
        bucket = await rig.new(Bucket, lambda: Bucket.create(ALICE, "b", "folder", None))
        bucket_id = bucket.aggregate.id_str
        for i in range(8):
            await rig.new(Blob, lambda: Blob.create(ALICE, {"i": i, "t": "x" * (100 * KIB)}, None, None, [bucket_id]))
        await routed(rig)
        one, two = rig.hub.connect(ALICE, "test"), rig.hub.connect(ALICE, "test")
        catching_up = [asyncio.create_task(rig.hub.catch_up(await rig.hub.open(o, ("bucket", bucket_id),
                                                                               bucket.position)))
                       for o in (one, two)]
        await asyncio.sleep(0.3)
        holding = one.user
        assert holding is not None
        # each connection's own half (512 KiB) would let them hold about 1 MiB between them
        assert holding.bytes <= 300 * KIB + 2 * 110 * KIB
        got: dict[int, list[str]] = {0: [], 1: []}
        while not all("caught_up" in g for g in got.values()):
            for n, outbox in enumerate((one, two)):  # both read: bytes let go by one let the other on
                if "caught_up" not in got[n]:
                    message = await outbox.get(timeout=5)
                    assert message is not None
                    got[n].append(message.type)
        await asyncio.gather(*catching_up)
        assert all(g.count("blob.created") == 8 for g in got.values())


async def test_a_catch_up_waits_for_room_in_bytes_instead_of_overflowing() -> None:
    async with running(LiveLimits(queue_bytes=250 * KIB)) as rig:
        bucket = await rig.new(Bucket, lambda: Bucket.create(ALICE, "b", "folder", None))
        bucket_id = bucket.aggregate.id_str
        for i in range(8):
            await rig.new(Blob, lambda: Blob.create(ALICE, {"i": i, "t": "x" * (100 * KIB)}, None, None, [bucket_id]))
        await routed(rig)  # all of it replayed from the log (the router's pushes would overflow the pending list)
        outbox = rig.hub.connect(ALICE, "test")
        catching_up = asyncio.create_task(rig.hub.catch_up(await rig.hub.open(outbox, ("bucket", bucket_id),
                                                                                bucket.position)))
        got: list[str] = []
        while "caught_up" not in got:
            await asyncio.sleep(0.01)  # a slow reader
            assert outbox.bytes <= 250 * KIB + 110 * KIB
            message = await outbox.get(timeout=5)
            assert message is not None
            got.append(message.type)
        await catching_up
        assert got == ["subscribed"] + ["blob.created"] * 8 + ["caught_up"] and not outbox.overflowed


async def routed(rig: Rig) -> None:
    """Until the router has dispatched everything in the log."""
    last = await rig.store.last_position()
    async with asyncio.timeout(5):
        while rig.hub.position <= last:
            await asyncio.sleep(0.01)


class GatedStore(MemoryEventStore):
    """The memory log whose ``read_range`` calls wait until the test lets them through: who reads when."""

    def __init__(self) -> None:
        super().__init__()
        self.gated = False
        self.reading: list[asyncio.Event] = []
        self.max_bytes_seen: list[int | None] = []

    async def read_range(self, aggregate_type: str, from_position: int, until_position: int, *,
                         aggregate_id: str | None = None, limit: int = 1000,
                         max_bytes: int | None = None) -> list[Any]:
        self.max_bytes_seen.append(max_bytes)
        if self.gated:
            go = asyncio.Event()
            self.reading.append(go)
            await go.wait()
        return await super().read_range(aggregate_type, from_position, until_position, aggregate_id=aggregate_id,
                                        limit=limit, max_bytes=max_bytes)


async def test_a_third_catch_up_of_one_user_waits_its_turn_and_another_user_is_not_held() -> None:
    rig = Rig(LiveLimits(catch_ups_per_user=2, catch_ups_per_process=4))
    store = GatedStore()
    rig.store, rig.repo = store, Repository(store, rig.codec)
    rig.shared = SharedLog(store)
    rig.hub = LiveHub(rig.shared, store, rig.codec, rig.hub.limits)
    tasks = [asyncio.create_task(rig.shared.run()), asyncio.create_task(rig.hub.run())]
    try:
        await asyncio.wait_for(rig.hub.started.wait(), 5)
        mine = [await rig.new(Bucket, lambda: Bucket.create(ALICE, f"b{i}", "folder", None)) for i in range(3)]
        theirs = await rig.new(Bucket, lambda: Bucket.create(BOB, "theirs", "folder", None), BOB)
        for bucket in mine:
            await rig.new(Blob, lambda: Blob.create(ALICE, 1, None, None, [bucket.aggregate.id_str]))
        await rig.new(Blob, lambda: Blob.create(BOB, 1, None, None, [theirs.aggregate.id_str]), BOB)
        await routed(rig)
        store.gated = True

        async def start(user: str, bucket_id: str) -> tuple[Outbox, asyncio.Task[None]]:
            outbox = rig.hub.connect(user, "test")
            sub = await rig.hub.open(outbox, ("bucket", bucket_id), since=1)
            return outbox, asyncio.create_task(rig.hub.catch_up(sub))

        alice = [await start(ALICE, b.aggregate.id_str) for b in mine]
        await asyncio.sleep(0.05)
        assert len(store.reading) == 2 and rig.hub.gate.waiting == 1  # the third waits, it is not refused
        assert not any(o.overflowed for o, _ in alice)
        bob, bob_task = await start(BOB, theirs.aggregate.id_str)
        await asyncio.sleep(0.05)
        assert len(store.reading) == 3  # Bob reads at once beside Alice's two
        store.reading[2].set()
        await asyncio.wait_for(bob_task, 5)
        assert [m.type for m in await take(bob, 3)] == ["subscribed", "blob.created", "caught_up"]
        assert len(store.reading) == 3 and rig.hub.gate.waiting == 1  # Alice's third still waits
        store.reading[0].set()  # one of Alice's first two ends...
        await asyncio.sleep(0.05)
        assert len(store.reading) == 4  # ... and the third reads
        for go in store.reading:
            go.set()
        for outbox, task in alice:
            await asyncio.wait_for(task, 5)
            assert [m.type for m in await take(outbox, 3)] == ["subscribed", "blob.created", "caught_up"]
        assert rig.hub.gate.active == 0 and rig.hub.gate.waiting == 0
        assert set(store.max_bytes_seen) == {rig.hub.limits.catch_up_read_bytes}  # every read bounded in bytes
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def test_the_gate_counts_the_process_and_a_cancelled_waiter_gives_up_its_place() -> None:
    gate = CatchUpGate(per_user=2, per_process=3)
    users = [new_id() for _ in range(4)]
    for user in users[:3]:
        await asyncio.wait_for(gate.acquire(user), 1)
    fourth = asyncio.create_task(gate.acquire(users[3]))
    cancelled = asyncio.create_task(gate.acquire(users[0]))
    await asyncio.sleep(0.01)
    assert not fourth.done() and gate.waiting == 2  # the process is full, whoever asks
    cancelled.cancel()
    await asyncio.gather(cancelled, return_exceptions=True)
    assert gate.waiting == 1
    gate.release(users[1])
    await asyncio.wait_for(fourth, 1)
    assert gate.active == 3 and gate.active_for(users[3]) == 1 and gate.active_for(users[1]) == 0


async def test_a_bucket_replay_skips_blobs_outside_it_without_holding_them_and_reads_in_byte_bounded_batches() -> None:
    rig = Rig()
    bucket = await rig.new(Bucket, lambda: Bucket.create(ALICE, "mine", "folder", None))
    other = await rig.new(Bucket, lambda: Bucket.create(ALICE, "other", "folder", None))
    bucket_id, other_id = bucket.aggregate.id_str, other.aggregate.id_str
    pad = "x" * (50 * KIB)
    inside = await rig.new(Blob, lambda: Blob.create(ALICE, {"in": 1}, None, None, [bucket_id]))
    outsiders = [await rig.new(Blob, lambda: Blob.create(BOB, {"i": i, "pad": pad}, None, None, []), BOB)
                 for i in range(10)]
    elsewhere = await rig.new(Blob, lambda: Blob.create(ALICE, {"pad": pad}, None, None, [other_id]))
    for saved in outsiders:
        await rig.change(Blob, saved.aggregate.id_str, lambda b: b.update({"pad": pad, "again": True}), BOB)
    inside_id, elsewhere_id = inside.aggregate.id_str, elsewhere.aggregate.id_str
    updated = await rig.change(Blob, inside_id, lambda b: b.update({"in": 2}))
    moved_in = await rig.change(Blob, elsewhere_id, lambda b: b.move(other_id, bucket_id))
    moved_out = await rig.change(Blob, inside_id, lambda b: b.move(bucket_id, other_id))
    await rig.change(Blob, inside_id, lambda b: b.update({"in": 3}))  # no longer ours
    deleted = await rig.change(Blob, elsewhere_id, lambda b: b.delete())

    replay = Replay(rig.store, rig.codec, ("bucket", bucket_id), read_bytes=120 * KIB)
    pushed: list[tuple[str, int, str]] = []

    async def put(push: Any) -> bool:
        pushed.append((push.type, push.position, push.data["blob_id"]))
        return True

    assert await replay.run(bucket.position + 1, await rig.store.last_position(), put)
    assert pushed == [("blob.created", inside.position, inside_id), ("blob.updated", updated, inside_id),
                      ("blob.moved", moved_in, elsewhere_id), ("blob.moved", moved_out, inside_id),
                      ("blob.deleted", deleted, elsewhere_id)]
    moved = [p for p in pushed if p[1] == moved_in]
    assert moved and replay.states.loads == 1  # only the blob that moved in was read from the log
    assert replay.skipped == 2 * len(outsiders) + 1 + 1  # their creations and updates, the created-elsewhere,
    # and the update after the move out: none of them built or held
    assert len(replay.states) == 0 and replay.states.bytes == 0  # the one left inside was deleted
    assert 0 < replay.largest_read_bytes <= 120 * KIB + 60 * KIB  # about 120 KiB per read, 50 KiB events


async def test_pushes_pending_behind_a_replay_are_bounded_in_bytes_too() -> None:
    async with running(LiveLimits(queue_size=1000, queue_bytes=250 * KIB)) as rig:
        bucket = await rig.new(Bucket, lambda: Bucket.create(ALICE, "b", "folder", None))
        bucket_id = bucket.aggregate.id_str
        outbox = rig.hub.connect(ALICE, "test")
        await routed(rig)
        sub = await rig.hub.open(outbox, ("bucket", bucket_id), since=bucket.position)  # replay not begun
        for i in range(4):
            await rig.new(Blob, lambda: Blob.create(ALICE, {"i": i, "t": "x" * (100 * KIB)}, None, None, [bucket_id]))
            await routed(rig)
            assert sub.pending_bytes <= 250 * KIB
        assert outbox.overflowed  # the fourth 100 KiB push did not fit: 4408, resume with since


def test_the_limits_come_from_the_settings_with_the_same_defaults() -> None:
    from adapters.runtime.lifecycle import live_limits
    from adapters.runtime.settings import Settings

    assert live_limits(Settings()) == LiveLimits()
    set_ = live_limits(Settings(live_queue_bytes=1000, live_user_queue_bytes=3000, live_states=5, live_states_bytes=7, live_catch_ups_per_user=3,
                                live_catch_ups_per_process=9, live_catch_up_read_bytes=11,
                                live_catch_up_states_bytes=13, live_catch_up_stall_seconds=2.5))
    assert set_.user_queue_bytes == 3000
    assert (set_.queue_bytes, set_.states, set_.states_bytes, set_.catch_ups_per_user, set_.catch_ups_per_process,
            set_.catch_up_read_bytes, set_.catch_up_states_bytes,
            set_.catch_up_stall_seconds) == (1000, 5, 7, 3, 9, 11, 13, 2.5)


async def test_clients_that_do_not_read_cannot_keep_the_process_turns_from_another_users_catch_up() -> None:
    carol = new_id()
    limits = LiveLimits(queue_bytes=64 * KIB, catch_ups_per_user=2, catch_ups_per_process=4,
                        catch_up_stall_seconds=0.2)
    async with running(limits) as rig:
        buckets = {}
        for user in (ALICE, BOB, carol):
            saved = await rig.new(Bucket, lambda: Bucket.create(user, "b", "folder", None), user)
            buckets[user] = saved.aggregate.id_str
        for user in (ALICE, BOB):  # about 1 MiB of history each: far more than a queue holds
            for i in range(10):
                await rig.new(Blob, lambda: Blob.create(user, {"i": i, "t": "x" * (100 * KIB)}, None, None,
                                                        [buckets[user]]), user)
        await rig.new(Blob, lambda: Blob.create(carol, {"i": 1}, None, None, [buckets[carol]]), carol)
        await routed(rig)

        async def start(user: str) -> tuple[Outbox, asyncio.Task[None]]:
            outbox = rig.hub.connect(user, "test")
            sub = await rig.hub.open(outbox, ("bucket", buckets[user]), since=1)
            return outbox, asyncio.create_task(rig.hub.catch_up(sub))

        stalled = [await start(user) for user in (ALICE, BOB, ALICE, BOB)]  # never read
        third = await start(ALICE)  # waits for Alice's own turns: that holds no one else up
        await asyncio.sleep(0.5)
        assert rig.hub.gate.active == 4 and rig.hub.gate.waiting == 1
        assert not any(o.overflowed for o, _ in stalled)  # nobody else waits: a slow reader is not cut off

        theirs, task = await start(carol)
        await asyncio.wait_for(task, 5)  # before: subscribed, then nothing, for as long as they do not read
        assert [(m.type, m.position) for m in await take(theirs, 3)][0::2] == [("subscribed", 1),
                                                                               ("caught_up", rig.hub.position - 1)]
        cut = [o for o, _ in stalled if o.overflowed]
        assert cut and all(o.failed.is_set() for o in cut)  # 4408: they resume with since, and wait again
        for outbox, catching_up in [*stalled, third]:
            catching_up.cancel()
            rig.hub.disconnect(outbox)
        await asyncio.gather(*(t for _, t in [*stalled, third]), return_exceptions=True)
        assert rig.hub.gate.active == 0 and rig.hub.gate.waiting == 0


async def test_the_pushes_pending_behind_many_subscriptions_share_the_connections_budget() -> None:
    budget = 512 * KIB
    async with running(LiveLimits(queue_size=1000, queue_bytes=budget, catch_ups_per_user=1,
                                  catch_up_stall_seconds=60)) as rig:
        history = await rig.new(Bucket, lambda: Bucket.create(ALICE, "history", "folder", None))
        for i in range(20):  # 1 MiB: more than the connection's budget
            await rig.new(Blob, lambda: Blob.create(ALICE, {"i": i, "t": "x" * (50 * KIB)}, None, None,
                                                    [history.aggregate.id_str]))
        buckets = [(await rig.new(Bucket, lambda: Bucket.create(ALICE, f"b{i}", "folder", None))).aggregate.id_str
                   for i in range(40)]
        await routed(rig)
        outbox = rig.hub.connect(ALICE, "test")  # never read
        first = await rig.hub.open(outbox, ("bucket", history.aggregate.id_str), since=history.position)
        running_ = [asyncio.create_task(rig.hub.catch_up(first))]
        await asyncio.sleep(0.1)  # its replay fills the queue (its half of the budget) and waits
        subs = []
        for bucket_id in buckets:  # each waits (for room, or its turn) behind the replay filling the queue
            subs.append(await rig.hub.open(outbox, ("bucket", bucket_id), since=1))
            running_.append(asyncio.create_task(rig.hub.catch_up(subs[-1])))
        await asyncio.sleep(0.1)
        assert outbox.bytes > 0 and all(s.pending == [] for s in subs)
        try:
            for write in range(1, 4):  # 40 pushes of about 5 KiB (the blob names its 40 buckets): 200 KiB a write
                await rig.new(Blob, lambda: Blob.create(ALICE, {"t": "y" * (3 * KIB)}, None, None, buckets))
                await routed(rig)
                held = outbox.bytes + sum(s.pending_bytes for s in subs)
                assert held <= budget  # 40 pending lists and the queue: one budget
                if write == 1:
                    assert not outbox.overflowed and all(len(s.pending or ()) == 1 for s in subs)
            assert outbox.overflowed and outbox.failed.is_set()  # past the budget: 4408, resume with since
            assert outbox.held_bytes == 0 and all(s.pending_bytes == 0 for s in subs)  # let go at once
        finally:
            for task in running_:
                task.cancel()
            await asyncio.gather(*running_, return_exceptions=True)
            rig.hub.disconnect(outbox)


async def test_a_client_reading_a_trickle_gives_its_turn_way_too_once_someone_waits() -> None:
    carol = new_id()
    limits = LiveLimits(queue_size=4, catch_ups_per_process=1, catch_up_stall_seconds=0.2)
    async with running(limits) as rig:
        mine = await rig.new(Bucket, lambda: Bucket.create(ALICE, "b", "folder", None))
        theirs = await rig.new(Bucket, lambda: Bucket.create(carol, "b", "folder", None), carol)
        for i in range(60):
            await rig.new(Blob, lambda: Blob.create(ALICE, i, None, None, [mine.aggregate.id_str]))
        await routed(rig)
        slow = rig.hub.connect(ALICE, "test")
        slow_task = asyncio.create_task(rig.hub.catch_up(await rig.hub.open(slow, ("bucket", mine.aggregate.id_str),
                                                                            mine.position)))

        async def trickle() -> int:  # one message every 50 ms: each wait for room is shorter than a look
            got = 0
            while await slow.get(timeout=1) is not None:
                got += 1
                await asyncio.sleep(0.05)
            return got

        reading = asyncio.create_task(trickle())
        await asyncio.sleep(0.5)  # alone: it keeps its turn, however slowly it reads
        assert not slow.overflowed
        outbox = rig.hub.connect(carol, "test")
        task = asyncio.create_task(rig.hub.catch_up(await rig.hub.open(outbox, ("bucket", theirs.aggregate.id_str), 1)))
        await asyncio.wait_for(task, 5)
        assert [m.type for m in await take(outbox, 2)] == ["subscribed", "caught_up"]
        assert slow.overflowed and await reading < 60  # cut before its replay ended: it resumes with since
        await asyncio.gather(slow_task, return_exceptions=True)


async def test_a_catch_up_that_reads_much_and_pushes_little_gives_its_turn_way_to_one_waiting() -> None:
    """Alice resumes a bucket of one blob from the start: she reads every blob event of everyone and
    pushes three, so she hardly waits for her client. With one turn in the process, Carol's short resume used to
    wait for Alice's whole scan; now Alice gives way after a slice and goes on after Carol."""
    carol = new_id()
    limits = LiveLimits(catch_ups_per_process=1, catch_up_read_events=50, catch_up_slice_seconds=0.0)
    async with running(limits) as rig:
        empty = await rig.new(Bucket, lambda: Bucket.create(ALICE, "empty", "folder", None))
        # one blob of hers, changed between thousands of someone else's: what her catch-up keeps of it is
        # let go each time she gives way, and read from the log again
        draft = await rig.new(Blob, lambda: Blob.create(ALICE, {"v": 0}, None, None, [empty.aggregate.id_str]))
        draft_id = draft.aggregate.id_str
        for i in range(3_000):  # someone else's blobs: Alice's catch-up reads them all
            await rig.new(Blob, lambda i=i: Blob.create(BOB, {"i": i}, None, None, []), BOB)
            if i in (1_000, 2_000):
                await rig.change(Blob, draft_id, lambda b, i=i: b.update({"v": i}))
        mine = await rig.new(Bucket, lambda: Bucket.create(carol, "mine", "folder", None), carol)
        await rig.new(Blob, lambda: Blob.create(carol, {"n": 1}, None, None, [mine.aggregate.id_str]), carol)
        async with asyncio.timeout(5):
            while rig.hub.position <= rig.store.records[-1].position:
                await asyncio.sleep(0.01)
        finished: list[str] = []

        async def resume(user: str, bucket_id: str, since: int) -> None:
            outbox = rig.hub.connect(user, "test")
            sub = await rig.hub.open(outbox, ("bucket", bucket_id), since)
            await rig.hub.catch_up(sub)
            messages = await take(outbox, 5 if user == ALICE else 3)
            assert messages[-1].type == "caught_up", messages
            if user == ALICE:  # every change of her blob, once, in order, with its data then
                pushes = [(m.type, m.data["blob"]["data"]) for m in messages[1:-1]]
                assert pushes == [("blob.created", {"v": 0}), ("blob.updated", {"v": 1000}),
                                  ("blob.updated", {"v": 2000})], pushes
            finished.append(user)

        await rig.hub.gate.acquire("someone")  # the one turn is taken: Alice, then Carol, line up for it
        alice = asyncio.create_task(resume(ALICE, empty.aggregate.id_str, empty.position))
        carol_resumes = asyncio.create_task(resume(carol, mine.aggregate.id_str, mine.position - 1))
        async with asyncio.timeout(5):
            while rig.hub.gate.waiting < 2:
                await asyncio.sleep(0.001)
        rig.hub.gate.release("someone")
        await asyncio.gather(alice, carol_resumes)
        assert finished == [carol, ALICE], "Carol's resume went between two of Alice's reads"
        assert rig.hub.gate.active == 0
