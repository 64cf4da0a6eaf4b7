"""Rungs: a load at a past position or version folds at most a rung of events, however long the history.

A load at a past position (``GET /v1/blobs/{id}?as_of=``, a retried command's answer) or version (a
revert, a job's input) cannot start from the latest snapshot, which is later. Each used to fold the
history from its first event, and an account could ask for that again and again on a blob it had
made long. Every fold now keeps the snapshot at each ``rung_events``-th version it passes, and such a
load starts from the rung at or below its target. Answers are compared with the plain fold of the
log (a repository without snapshots), which is what they must equal.
"""

from __future__ import annotations

import asyncio
import random
from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.live.states import AggregateStates
from adapters.runtime.bootstrap import snapshotting
from commands.repository import Context, Repository
from domain.blob import Blob
from domain.job import Job
from domain.ids import new_id
from domain.snapshot import Taken
from projections.changes import row_after
from projections.documents import JobOut
from projections.jobs import JobProjection
from tests.support.memory_commands import MemoryCommandIndex
from tests.support.memory_snapshots import MemorySnapshots
from tests.support.memory_store import MemoryEventStore
from tests.unit.test_command_index import keyed, keyed_blob
from tests.unit.test_history_pages import long_job
from tests.unit.test_repository_folds import BUCKETS, CODEC, OWNER, WatchingStore, state

RUNG = 32


def repository(store: MemoryEventStore, snapshots: MemorySnapshots, rung_events: int = RUNG, **more: Any) -> Repository:
    return Repository(store, CODEC, snapshots=snapshots, snapshotting=snapshotting(), snapshot_after=32,
                      rung_events=rung_events, **more)


def read(store: WatchingStore) -> int:
    return sum(load["count"] for load in store.loads)


async def plain(store: MemoryEventStore, blob_id: str, *, until: int | None = None, version: int | None = None) -> Any:
    """What the log says, folded from its first event by a repository that keeps nothing."""
    repo = Repository(store, CODEC)
    if version is not None:
        return await repo.at_version(Blob, blob_id, version)
    saved = await repo.get(Blob, blob_id, until_position=until)
    return None if saved is None else (state(saved.aggregate), saved.position)


async def test_after_one_load_any_past_position_or_version_folds_at_most_a_rung() -> None:
    store = WatchingStore()
    blob_id, _ = await keyed_blob(store, updates=600, size=100)
    snapshots = MemorySnapshots()
    first = repository(store, snapshots)
    assert await first.get(Blob, blob_id) is not None  # a cold load: folds all 601 events, keeps the rungs
    assert first.rungs_kept == 601 // RUNG and len(snapshots.rungs) == 601 // RUNG
    positions = [r.position for r in store.records]
    for until in random.Random(7).sample(positions, 40) + [positions[0], positions[-1] - 1]:
        expected = await plain(store, blob_id, until=until)
        store.watch()
        saved = await repository(store, snapshots).get(Blob, blob_id, until_position=until)
        assert read(store) <= RUNG, f"as_of {until}: {read(store)} events folded"
        assert saved is not None and (state(saved.aggregate), saved.position) == expected
    for version in (1, RUNG - 1, RUNG, RUNG + 1, 300, 577, 601, 602):
        expected = await plain(store, blob_id, version=version)
        store.watch()
        found = await repository(store, snapshots).at_version(Blob, blob_id, version)
        assert read(store) <= RUNG + 1, f"version {version}: {read(store)} events folded"
        assert found is not None and state(found) == state(expected)


async def test_the_first_load_at_a_past_position_leaves_the_rungs_for_the_next() -> None:
    """A blob only ever changed by commands (kept in the writer's cache) was never folded: no rungs.
    The first past load folds from the start and keeps the rungs it passes."""
    store = WatchingStore()
    blob_id, _ = await keyed_blob(store, updates=400, size=100)
    snapshots = MemorySnapshots()
    late = store.records[350].position
    store.watch()
    assert await repository(store, snapshots).get(Blob, blob_id, until_position=late) is not None
    assert read(store) == 351 and len(snapshots.rungs) == 351 // RUNG
    for until in (store.records[340].position, store.records[40].position):
        expected = await plain(store, blob_id, until=until)
        store.watch()
        saved = await repository(store, snapshots).get(Blob, blob_id, until_position=until)
        assert read(store) <= RUNG
        assert saved is not None and (state(saved.aggregate), saved.position) == expected


async def test_a_missing_rung_is_found_lower_down_and_kept_again() -> None:
    """Rungs that left the bucket (aged out, pushed out, purged) are found missing, looked for lower
    down, and written again by the next fold that passes them, by the same process too."""
    store = WatchingStore()
    blob_id, _ = await keyed_blob(store, updates=640, size=100)
    snapshots = MemorySnapshots()
    same = repository(store, snapshots)
    await same.get(Blob, blob_id)
    for rung in range(12, 20):  # pushed out of the bucket, say
        del snapshots.rungs[("blob", blob_id, rung)]
    until = store.records[19 * RUNG + 5].position
    expected = await plain(store, blob_id, until=until)
    store.watch()
    saved = await same.get(Blob, blob_id, until_position=until)
    assert read(store) <= 2 * 8 * RUNG + RUNG, "from a rung below the gap, found by a few probes"
    assert saved is not None and (state(saved.aggregate), saved.position) == expected
    assert all(("blob", blob_id, rung) in snapshots.rungs for rung in range(12, 20)), "the gap is filled"
    snapshots.rungs.clear()  # the whole bucket purged
    for _ in range(2):
        store.watch()
        assert await same.get(Blob, blob_id, until_position=until) is not None
    assert read(store) <= RUNG, "the first load after the purge kept the rungs again"


async def test_a_rung_the_log_does_not_hold_is_not_used() -> None:
    """A log restored from a backup can put another event at a rung's position: checked like any snapshot."""
    store = MemoryEventStore()
    blob_id, _ = await keyed_blob(store, updates=200, size=100)
    snapshots = MemorySnapshots()
    await repository(store, snapshots).get(Blob, blob_id)
    for (kind, aggregate_id, rung), raw in list(snapshots.rungs.items()):
        forged = Taken.from_json(orjson.loads(raw))
        forged = Taken(forged.position, forged.version, "someone else's",
                       {**forged.state, "owner_id": "mallory", "data": {"forged": True}})
        snapshots.keep(kind, aggregate_id, forged, rung=rung)
    for until in (store.records[3 * RUNG - 1].position, store.records[150].position):  # at a rung, and after one
        saved = await repository(store, snapshots).get(Blob, blob_id, until_position=until)
        assert saved is not None and (state(saved.aggregate), saved.position) == await plain(store, blob_id, until=until)
    for version in (2 * RUNG, 2 * RUNG + 3):
        found = await repository(store, snapshots).at_version(Blob, blob_id, version)
        assert found is not None and state(found) == state(await plain(store, blob_id, version=version))


async def test_a_retried_keyed_command_deep_in_a_long_history_folds_at_most_a_rung() -> None:
    store = WatchingStore()
    blob_id, commands = await keyed_blob(store, updates=500, size=100)
    snapshots = MemorySnapshots()
    await repository(store, snapshots).get(Blob, blob_id)
    index = MemoryCommandIndex(store)
    expected = await Repository(store, CODEC).replayed(Blob, blob_id, Context(OWNER, commands[333]))
    store.watch()
    found = await repository(store, snapshots, commands=index).replayed(Blob, blob_id, Context(OWNER, commands[333]))
    assert read(store) <= RUNG
    assert found is not None and expected is not None
    assert found.position == expected.position and state(found.aggregate) == state(expected.aggregate)


@settings(max_examples=80, deadline=None)
@given(length=st.integers(1, 150), rung_events=st.integers(1, 20), loaded=st.booleans(),
       dropped=st.sets(st.integers(1, 150), max_size=20), targets=st.lists(st.integers(-2, 330), max_size=8),
       versions=st.lists(st.integers(0, 160), max_size=6))
def test_past_loads_answer_what_the_log_says(length: int, rung_events: int, loaded: bool, dropped: set[int],
                                             targets: list[int], versions: list[int]) -> None:
    """Any history (interleaved with another blob's), any rung size, rungs kept or not, some pushed
    out: a load at any position (before the blob, at another blob's event, past the log's end) and
    at any version answers what folding the log answers."""
    asyncio.run(_alike(length, rung_events, loaded, dropped, targets, versions))


async def _alike(length: int, rung_events: int, loaded: bool, dropped: set[int], targets: list[int],
                 versions: list[int]) -> None:
    store = MemoryEventStore()
    writer = Repository(store, CODEC)
    other = await writer.execute(Blob, None, lambda _: Blob.create(OWNER, {"o": 0}, None, None, []),
                                 Context(OWNER, keyed()))
    blob_id = ""
    for n in range(length):
        ctx = Context(OWNER, new_id())
        if n == 0:
            blob_id = (await writer.execute(Blob, None, lambda _: Blob.create(OWNER, {"n": 0}, None, None, []),
                                            ctx)).aggregate.id_str
        else:
            await writer.execute(Blob, blob_id, lambda b, n=n: (b.update({"n": n}), b)[1], ctx)
        if n % 3 == 0:
            await writer.execute(Blob, other.aggregate.id_str, lambda b, n=n: (b.update({"o": n}), b)[1], ctx)
    snapshots = MemorySnapshots()
    if loaded:
        await repository(store, snapshots, rung_events).get(Blob, blob_id)
    for rung in dropped:
        snapshots.rungs.pop(("blob", blob_id, rung), None)
    repo = repository(store, snapshots, rung_events)
    for until in targets:
        saved = await repo.get(Blob, blob_id, until_position=until)
        expected = await plain(store, blob_id, until=until)
        assert (None if saved is None else (state(saved.aggregate), saved.position)) == expected, until
    for version in versions:
        found = await repo.at_version(Blob, blob_id, version)
        expected = await plain(store, blob_id, version=version)
        assert (found is None) == (expected is None) and (found is None or state(found) == state(expected)), version


async def test_the_live_router_meets_a_long_blob_at_the_rung_below_its_event() -> None:
    """A push carries the whole blob: the router builds it up to the event it routes. For a blob it
    meets for the first time deep in a long history (a catch-up from ``since``), through the rung."""
    store = WatchingStore()
    blob_id, _ = await keyed_blob(store, updates=300, size=100)
    snapshots = MemorySnapshots()
    await repository(store, snapshots).get(Blob, blob_id)
    states = AggregateStates(store, CODEC, load=repository(store, snapshots).state_at)
    record = store.records[250]
    expected = await plain(store, blob_id, until=record.position)
    store.watch()
    after = await states.after(record)
    assert read(store) <= RUNG and states.loads == 1
    assert after is not None and (state(after), record.position) == expected


async def test_a_job_retried_over_and_over_is_answered_at_a_past_position_from_a_rung() -> None:
    """A job's answer is its aggregate (``JobOut.from_aggregate``); a retried command's answer at a
    past position loads the job there, from the rung below (jobs are snapshotted: their owner makes
    them long)."""
    store = WatchingStore()
    job_id = await long_job(store, cycles=100)  # 401 events
    snapshots = MemorySnapshots()
    await repository(store, snapshots).get(Job, job_id)
    records = await MemoryEventStore.load(store, Job.TYPE, job_id)
    for record in random.Random(3).sample(records, 12):
        store.watch()
        past = await repository(store, snapshots).get(Job, job_id, until_position=record.position)
        assert read(store) <= RUNG
        assert past is not None
        expected = row_after(JobProjection(), [r for r in records if r.position <= record.position])
        assert JobOut.from_aggregate(past.aggregate, past.position) == JobOut.model_validate(expected)


async def test_a_latest_snapshot_far_below_a_past_position_gives_way_to_the_rungs() -> None:
    """The latest snapshot is at version 41 and the blob was edited 600 times since by a writer that
    kept it cached (no load, no newer snapshot). The first past load starts from that snapshot and
    keeps the rungs it passes; every later one starts from the rung below, not from version 41."""
    store = WatchingStore()
    blob_id, _ = await keyed_blob(store, updates=40, size=100)
    snapshots = MemorySnapshots()
    assert await repository(store, snapshots).get(Blob, blob_id) is not None
    assert ("blob", blob_id) in snapshots.kept and len(snapshots.rungs) == 1  # version 41, rung 1 (32)
    writer = Repository(store, CODEC)
    await writer.get_and_keep(Blob, blob_id)
    for n in range(600):
        await writer.execute(Blob, blob_id, lambda b, n=n: (b.update({"n": n}), b)[1], Context(OWNER, keyed()))
    records = await MemoryEventStore.load(store, "blob", blob_id)
    store.watch()
    first = await repository(store, snapshots).get(Blob, blob_id, until_position=records[-2].position)
    assert first is not None and read(store) <= 640 - 41 + 1, "from the latest snapshot"
    for record in random.Random(11).sample(records[60:], 30):
        expected = await plain(store, blob_id, until=record.position)
        store.watch()
        saved = await repository(store, snapshots).get(Blob, blob_id, until_position=record.position)
        assert read(store) <= RUNG, f"as_of {record.position}: {read(store)} events folded"
        assert saved is not None and (state(saved.aggregate), saved.position) == expected


async def test_rungs_of_a_large_state_changed_by_small_events_are_kept_further_apart() -> None:
    """A 125 KB blob moved between buckets 1,500 times (each move a small event): a rung every 32
    versions would store far more than the history it shortcuts, so a rung is kept only when the
    events since the previous one weigh at least a quarter of it; past loads still answer exactly,
    folding at most the events between two kept rungs."""
    store = WatchingStore()
    writer = Repository(store, CODEC)
    made = await writer.execute(Blob, None, lambda _: Blob.create(OWNER, {"pad": "x" * 125_000}, None, None,
                                                                  BUCKETS[:1]), Context(OWNER, keyed()))
    blob_id = made.aggregate.id_str
    for n in range(1500):
        source, target = (BUCKETS[0], BUCKETS[1]) if n % 2 == 0 else (BUCKETS[1], BUCKETS[0])
        await writer.execute(Blob, blob_id, lambda b, s=source, t=target: (b.move(s, t), b)[1],
                             Context(OWNER, keyed()))
    records = await MemoryEventStore.load(store, "blob", blob_id)
    snapshots = MemorySnapshots()
    await repository(store, snapshots).get(Blob, blob_id)
    kept = sorted(rung for (_, _, rung) in snapshots.rungs)
    assert 0 < len(kept) < 1501 // RUNG // 2, f"rungs kept: {kept}"
    by_version = {r.version: r for r in records}
    previous = 0
    for rung in kept:
        span = sum(by_version[v].size for v in range(previous + 1, rung * RUNG + 1))
        assert len(snapshots.rungs[("blob", blob_id, rung)]) <= 4 * span, rung
        previous = rung * RUNG
    gap = max(b - a for a, b in zip([0, *kept], kept)) * RUNG
    for record in random.Random(5).sample(records, 20):
        expected = await plain(store, blob_id, until=record.position)
        store.watch()
        saved = await repository(store, snapshots).get(Blob, blob_id, until_position=record.position)
        assert read(store) <= 2 * gap + RUNG
        assert saved is not None and (state(saved.aggregate), saved.position) == expected
