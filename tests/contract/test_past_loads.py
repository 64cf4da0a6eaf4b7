"""A load at a past position reads the events up to it and none after it, against a real nats-server.

nats-server honours ``up_to_seq`` in a Direct Get only with ``multi_last``: a batched one runs on past
it to its batch size (1,000 events), which the store then dropped. So ``GET /v1/blobs/{id}?as_of=`` of
a long history's middle read (and decoded) up to a thousand events it did not use, every time. What
is read is what a user is charged for (``adapters.work``), so it is counted here the same way.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timezone
from typing import Any

from nats.aio.client import Client
from nats.js import api

from adapters.jetstream.event_store import JetStreamEventStore
from adapters.runtime.bootstrap import snapshotting
from adapters.work import metered, unmetered
from commands.repository import Repository
from domain.blob import Blob
from domain.ids import new_id
from domain.recorded import NewEvent
from tests.support.memory_snapshots import MemorySnapshots
from tests.unit.test_repository_folds import BUCKETS, CODEC, OWNER, ctx, state, updating

UPDATES = 200


async def interleaved_blobs(store: JetStreamEventStore) -> tuple[str, list[int]]:
    """Two blobs updated in turns; the first one's id and the positions of its events."""
    repo = Repository(store, CODEC)
    blobs = [await repo.execute(Blob, None, lambda _: Blob.create(OWNER, {"n": 0}, None, None, BUCKETS[:1]), ctx())
             for _ in range(2)]
    ids = [saved.aggregate.id_str for saved in blobs]
    positions = [blobs[0].position]
    for n in range(1, UPDATES + 1):
        for i, blob_id in enumerate(ids):
            saved = await repo.execute(Blob, blob_id, updating({"n": n}), ctx())
            if i == 0:
                positions.append(saved.position)
    return ids[0], positions


async def test_a_store_load_up_to_a_position_reads_no_event_after_it(private_store: JetStreamEventStore) -> None:
    blob_id, positions = await interleaved_blobs(private_store)
    for until in (positions[0], positions[57], positions[-2]):
        with metered() as work:
            records = await private_store.load("blob", blob_id, until_position=until)
        assert records[-1].position == until
        # the other blob's events between them are no events of this subject: only the positions are a bound
        assert work.events <= len(records) + (until - positions[0]) // 2 + 1, (until, work.events, len(records))


async def test_a_blob_as_of_a_past_position_reads_its_events_up_to_there_and_none_after(
    private_store: JetStreamEventStore,
) -> None:
    blob_id, positions = await interleaved_blobs(private_store)
    repo = Repository(private_store, CODEC, snapshots=MemorySnapshots(), snapshotting=snapshotting(),
                      snapshot_after=32, rung_events=1024)
    assert await repo.get(Blob, blob_id) is not None  # keeps the latest snapshot: later than any past position
    plain = Repository(private_store, CODEC)  # what the log says, folded from the first event
    for version in (1, 2, 100, UPDATES):
        until = positions[version - 1]
        with metered() as work:
            saved = await repo.get(Blob, blob_id, until_position=until)
        expected = await plain.get(Blob, blob_id, until_position=until)
        assert saved is not None and expected is not None and state(saved.aggregate) == state(expected.aggregate)
        assert saved.aggregate.version == version
        assert work.events <= version + 1, f"version {version}: {work.events} events read"  # and the last before it


async def test_reads_of_a_schema_anyone_may_use_are_not_charged_to_the_request(nc: Client) -> None:
    """A schema's owner can make its history long; everyone who writes against it reads that history
    when it changed. The composition root names schemas uncharged, so the reader does not pay for it."""
    tag = uuid.uuid4().hex[:10]
    await nc.jetstream().add_stream(api.StreamConfig(name=f"T{tag}", subjects=[f"t{tag}.>"], allow_direct=True))
    store = JetStreamEventStore(nc, stream=f"T{tag}", prefix=f"t{tag}", uncharged_types=("schema",))
    try:
        for aggregate_type in ("schema", "blob"):
            at = 0
            for version in range(1, 6):
                event = NewEvent(type="Thing.Changed", version=version, at=datetime.now(timezone.utc), data={},
                                 actor="u1")
                at = (await store.append(aggregate_type, "one", event, at, new_id())).position
        with metered() as work:
            assert len(await store.load("schema", "one")) == 5
        assert work.events == 0
        with metered() as work:
            assert len(await store.load("blob", "one")) == 5
        assert work.events == 5
    finally:
        await nc.jetstream().delete_stream(f"T{tag}")


async def test_the_fold_that_replaces_a_missing_snapshot_is_not_charged_to_the_request(
    private_store: JetStreamEventStore,
) -> None:
    """After a deploy (a new code fingerprint) or while the snapshot bucket is slow, a long blob's first
    load folds its whole history: the system's doing, not the user's, so it is not counted. What the
    user chooses (a load at a past position) still is."""
    blob_id, positions = await interleaved_blobs(private_store)

    def repository(**unmetering: Any) -> Repository:
        return Repository(private_store, CODEC, snapshots=MemorySnapshots(), snapshotting=snapshotting(),
                          snapshot_after=32, rung_events=1024, **unmetering)

    with metered() as work:
        assert await repository().get(Blob, blob_id) is not None
    assert work.events == UPDATES + 1, "without the composition root's context every read is counted"
    repo = repository(unmetered=unmetered)
    with metered() as work:
        assert await repo.get(Blob, blob_id) is not None
    assert work.events == 0 and repo.snapshots_kept == 1
    with metered() as work:
        assert await repo.get(Blob, blob_id, until_position=positions[100]) is not None
    assert work.events == 101 + 1
