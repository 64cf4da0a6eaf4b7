"""A load at a past position reads the events up to it and none after it, against a real nats-server.

nats-server honours ``up_to_seq`` in a Direct Get only with ``multi_last``: a batched one runs on past
it to its batch size (1,000 events), which the store then dropped. So ``GET /v1/blobs/{id}?as_of=`` of
a long history's middle read (and decoded) up to a thousand events it did not use, every time. What
is read is what a user is charged for (``adapters.work``), so it is counted here the same way.
"""

from __future__ import annotations

from adapters.jetstream.event_store import JetStreamEventStore
from adapters.runtime.bootstrap import snapshotting
from adapters.work import metered
from commands.repository import Repository
from domain.blob import Blob
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
