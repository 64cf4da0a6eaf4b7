"""Snapshots in the KV bucket of streams.yaml, against a real nats-server (the session's ``nc``)."""

from __future__ import annotations

import nats.aio.client
from nats.aio.msg import Msg
from nats.js import api

from adapters.jetstream.event_store import JetStreamEventStore
from adapters.jetstream.snapshots import JetStreamSnapshots, code_fingerprint
from adapters.runtime.bootstrap import aggregates, snapshotting
from commands.repository import Context, Repository
from domain.base import EventCodec
from domain.blob import Blob
from domain.ids import new_id
from domain.snapshot import Taken

CODEC = EventCodec(aggregates())
OWNER = new_id()
STATE = {"_created_on": "2026-11-30T12:00:00+00:00", "_modified_on": "2026-11-30T12:00:01+00:00", "data": {"n": 1}}


async def test_a_kept_snapshot_is_read_back_by_the_same_code_only(nc: nats.aio.client.Client) -> None:
    snapshots = JetStreamSnapshots(nc, code_fingerprint())
    blob_id = new_id()
    assert await snapshots.get("blob", blob_id) is None
    snapshots.keep("blob", blob_id, Taken(7, 3, "command-1", STATE))
    await snapshots.flush()  # the write is in the background
    assert snapshots.written == 1
    read = await snapshots.get("blob", blob_id)
    assert read == Taken(7, 3, "command-1", STATE) and read.size > 0  # type: ignore[union-attr]
    assert await JetStreamSnapshots(nc, "0123456789abcdef").get("blob", blob_id) is None, "other code, other keys"
    info = await nc.jetstream().stream_info("KV_INK_SNAPSHOTS")
    assert info.config.max_msgs_per_subject == 1 and info.config.allow_direct and info.config.max_bytes == 1 << 30


async def test_rungs_are_kept_beside_the_latest_snapshot(nc: nats.aio.client.Client) -> None:
    snapshots = JetStreamSnapshots(nc, code_fingerprint())
    blob_id = new_id()
    snapshots.keep("blob", blob_id, Taken(9, 5, "latest", STATE))
    snapshots.keep("blob", blob_id, Taken(4, 2, "rung-1", STATE), rung=1)
    snapshots.keep("blob", blob_id, Taken(8, 4, "rung-2", STATE), rung=2)
    await snapshots.flush()
    assert await snapshots.get("blob", blob_id) == Taken(9, 5, "latest", STATE), "rungs do not replace it"
    assert await snapshots.get("blob", blob_id, rung=1) == Taken(4, 2, "rung-1", STATE)
    assert await snapshots.get("blob", blob_id, rung=2) == Taken(8, 4, "rung-2", STATE)
    assert await snapshots.get("blob", blob_id, rung=3) is None
    snapshots.keep("blob", blob_id, Taken(4, 2, "rung-1 again", STATE), rung=1)
    await snapshots.flush()
    assert await snapshots.get("blob", blob_id, rung=1) == Taken(4, 2, "rung-1 again", STATE), "one per key"


async def test_what_cannot_be_a_snapshot_is_not_written(nc: nats.aio.client.Client) -> None:
    snapshots = JetStreamSnapshots(nc, code_fingerprint())
    too_big, bad_id = new_id(), "blob.>"
    snapshots.keep("blob", too_big, Taken(7, 3, None, {**STATE, "data": "x" * nc.max_payload}))
    snapshots.keep("blob", bad_id, Taken(7, 3, None, STATE))
    await snapshots.close()
    closed = new_id()
    snapshots.keep("blob", closed, Taken(7, 3, None, STATE))  # after close: not written
    await snapshots.flush()
    assert snapshots.written == 0 and snapshots.dropped == 3
    for key in (too_big, bad_id, closed):
        assert await snapshots.get("blob", key) is None


async def test_a_bucket_that_does_not_answer_costs_one_short_wait_then_is_left_alone(
    nc: nats.aio.client.Client,
) -> None:
    asked: list[str] = []

    async def never_answer(msg: Msg) -> None:
        asked.append(msg.subject)

    sub = await nc.subscribe("$JS.API.DIRECT.GET.KV_STALLED.>", cb=never_answer)
    try:
        snapshots = JetStreamSnapshots(nc, code_fingerprint(), bucket="STALLED", read_timeout=0.2, rest_seconds=60)
        for _ in range(3):
            assert await snapshots.get("blob", new_id()) is None
        assert len(asked) == 1, "after a read that timed out, the next loads fold the log without asking"
    finally:
        await sub.unsubscribe()


async def test_a_fresh_process_loads_a_long_blob_from_its_snapshot(private_store: JetStreamEventStore,
                                                                    nc: nats.aio.client.Client) -> None:  # fmt: skip
    def repository(snapshots: JetStreamSnapshots) -> Repository:
        return Repository(private_store, CODEC, snapshots=snapshots, snapshotting=snapshotting(), snapshot_after=32)

    writer = repository(JetStreamSnapshots(nc, code_fingerprint()))
    created = await writer.execute(Blob, None, lambda _: Blob.create(OWNER, {"n": 0}, None, None, []),
                                   Context(OWNER, new_id()))  # fmt: skip
    blob_id = created.aggregate.id_str
    for n in range(1, 40):
        await writer.execute(Blob, blob_id, lambda b, n=n: (b.update({"n": n}), b)[1], Context(OWNER, new_id()))

    snapshots = JetStreamSnapshots(nc, code_fingerprint())
    first = repository(snapshots)
    folded = await first.get(Blob, blob_id)
    await snapshots.flush()
    assert folded is not None and first.snapshot_hits == 0 and snapshots.written == 1

    await writer.execute(Blob, blob_id, lambda b: (b.update({"n": 40}), b)[1], Context(OWNER, new_id()))
    second = repository(JetStreamSnapshots(nc, code_fingerprint()))
    loaded = await second.get(Blob, blob_id)
    assert loaded is not None and second.snapshot_hits == 1
    assert loaded.aggregate.version == 41 and loaded.aggregate.data == {"n": 40}
    whole = CODEC.rebuild(await private_store.load("blob", blob_id))
    assert {k: v for k, v in vars(loaded.aggregate).items() if k != "_pending_events"} == {
        k: v for k, v in vars(whole).items() if k != "_pending_events"
    }
    assert loaded.position == (await private_store.load("blob", blob_id))[-1].position


async def test_a_stream_restored_from_a_backup_does_not_bring_back_a_lost_state(nc: nats.aio.client.Client) -> None:
    """The log is restored from a backup taken at position 35 (the same sequences, as ``nats stream
    restore`` gives); the snapshot at position 40, of events the backup lacks, stays in the bucket.
    The blob's next edits land at positions 36-40 again, and a command after them is decided on
    the restored log, not on the snapshot."""
    js = nc.jetstream()
    tag = new_id()[-10:]
    config = api.StreamConfig(name=f"R{tag}", subjects=[f"r{tag}.>"], allow_direct=True, duplicate_window=120)
    await js.add_stream(config)
    store = JetStreamEventStore(nc, stream=f"R{tag}", prefix=f"r{tag}")
    writer = Repository(store, CODEC)
    created = await writer.execute(Blob, None, lambda _: Blob.create(OWNER, {"n": 0}, None, None, []),
                                   Context(OWNER, new_id()))  # fmt: skip
    blob_id = created.aggregate.id_str
    for n in range(1, 40):
        await writer.execute(Blob, blob_id, lambda b, n=n: (b.update({"n": n, "timeline": "lost"}), b)[1],
                             Context(OWNER, new_id()))  # fmt: skip
    backup = [await js.get_msg(config.name or "", seq=seq) for seq in range(1, 36)]
    snapshots = JetStreamSnapshots(nc, code_fingerprint())
    await Repository(store, CODEC, snapshots=snapshots, snapshotting=snapshotting()).get(Blob, blob_id)
    await snapshots.flush()
    assert snapshots.written == 1

    await js.delete_stream(config.name or "")
    await js.add_stream(config)
    for msg in backup:
        await js.publish(msg.subject or "", msg.data or b"",
                         headers={k: v for k, v in (msg.headers or {}).items() if not k.startswith("Nats-Expected")})
    writer = Repository(store, CODEC)
    for n in range(35, 40):
        await writer.execute(Blob, blob_id, lambda b, n=n: (b.update({"n": n, "timeline": "kept"}), b)[1],
                             Context(OWNER, new_id()))  # fmt: skip
    repo = Repository(store, CODEC, snapshots=JetStreamSnapshots(nc, code_fingerprint()), snapshotting=snapshotting())
    saved = await repo.execute(Blob, blob_id, lambda b: (b.update({**b.data, "edited": True}), b)[1],
                               Context(OWNER, new_id()))  # fmt: skip
    assert repo.snapshot_hits == 0
    assert saved.aggregate.data == {"n": 39, "timeline": "kept", "edited": True}
    whole = CODEC.rebuild(await store.load("blob", blob_id))
    assert whole is not None and whole.version == 41 and whole.data == saved.aggregate.data  # type: ignore[attr-defined]


async def test_a_cold_load_passing_many_rungs_still_keeps_its_latest_snapshot(
    private_store: JetStreamEventStore, nc: nats.aio.client.Client
) -> None:
    """One fold that passes more rungs than may be written at once: the rungs over the limit wait for
    a later fold, and the latest snapshot, which saves every cold load the whole fold, is written."""
    writer = Repository(private_store, CODEC)
    created = await writer.execute(Blob, None, lambda _: Blob.create(OWNER, {"n": 0}, None, None, []),
                                   Context(OWNER, new_id()))  # fmt: skip
    blob_id = created.aggregate.id_str
    for n in range(1, 600):
        await writer.execute(Blob, blob_id, lambda b, n=n: (b.update({"n": n, "pad": "p" * 200}), b)[1],
                             Context(OWNER, new_id()))

    def cold(snapshots: JetStreamSnapshots) -> Repository:
        return Repository(private_store, CODEC, snapshots=snapshots, snapshotting=snapshotting(), snapshot_after=32,
                          rung_events=16)

    snapshots = JetStreamSnapshots(nc, code_fingerprint(), in_flight=8)
    first = cold(snapshots)
    assert await first.get(Blob, blob_id) is not None  # 600 events in one batch: 37 rungs passed
    await snapshots.flush()
    assert first.snapshots_kept == 1 and 0 < first.rungs_kept < 37, "the rungs over the limit are left"
    latest = await snapshots.get("blob", blob_id)
    assert latest is not None and latest.version == 600
    kept = [r for r in range(1, 38) if await snapshots.get("blob", blob_id, rung=r) is not None]
    assert len(kept) == first.rungs_kept
    second = cold(snapshots)
    assert await second.get(Blob, blob_id, until_position=latest.position - 1) is not None  # from rungs down
    await snapshots.flush()
    again = [r for r in range(1, 38) if await snapshots.get("blob", blob_id, rung=r) is not None]
    assert len(again) > len(kept), "the load below the rungs kept some of those left the first time"
