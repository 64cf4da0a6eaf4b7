"""Snapshots in the KV bucket of streams.yaml, against a real nats-server (the session's ``nc``)."""

from __future__ import annotations

import nats.aio.client

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
    snapshots.keep("blob", blob_id, Taken(7, 3, STATE))
    await snapshots.close()  # the write is in the background
    assert snapshots.written == 1
    read = await snapshots.get("blob", blob_id)
    assert read == Taken(7, 3, STATE) and read.size > 0  # type: ignore[union-attr]
    assert await JetStreamSnapshots(nc, "0123456789abcdef").get("blob", blob_id) is None, "other code, other keys"
    info = await nc.jetstream().stream_info("KV_INK_SNAPSHOTS")
    assert info.config.max_msgs_per_subject == 1 and info.config.allow_direct


async def test_what_cannot_be_a_snapshot_is_not_written(nc: nats.aio.client.Client) -> None:
    snapshots = JetStreamSnapshots(nc, code_fingerprint())
    too_big, bad_id = new_id(), "blob.>"
    snapshots.keep("blob", too_big, Taken(7, 3, {**STATE, "data": "x" * nc.max_payload}))
    snapshots.keep("blob", bad_id, Taken(7, 3, STATE))
    await snapshots.close()
    assert snapshots.written == 0 and snapshots.dropped == 2
    assert await snapshots.get("blob", too_big) is None and await snapshots.get("blob", bad_id) is None


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
    await snapshots.close()
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
