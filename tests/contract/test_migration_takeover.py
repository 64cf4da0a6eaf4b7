"""A migration run taken over after its runner was lost, against a real nats-server: nothing is written twice,
and what the lost attempt wrote without recording it is found, counted and reverted like the rest.

The lost attempt is played by hand through the bus (start, four blob writes, the progress of two of them),
as a runner killed between its writes and its progress event would leave the log; the run is then handed
to a ``MigrationExecutor`` the way a redelivered message is (``ack_wait`` 0: the old attempt is abandoned).
The same hand plays lost attempts of a revert: a revert counts its own attempts, and one whose attempts are
used up stops (the run ``completed`` again, with the reason) instead of staying ``reverting`` for good.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import aclosing
from typing import Any

import pytest

from adapters.jobs.migrations import MigrationExecutor, MigrationOptions
from adapters.sandbox.pool import SandboxPool
from adapters.telemetry.metrics import Metrics
from commands.migrations import (
    RecordMigrationProgress,
    RecordRevertProgress,
    StartMigration,
    StartRevert,
    WriteMigratedBlob,
    blob_write_id,
)
from commands.repository import Context
from domain.blob import Blob
from domain.ids import new_id
from tests.integration.migration.helpers import profile_schema, profiles, this_year
from tests.integration.processor.helpers import isolated_system, user
from tests.support.servers import Database
from tests.support.system import RunningSystem

LOST = "system:runner/lost"


@pytest.fixture
async def quiet(database: Database) -> AsyncIterator[RunningSystem]:
    """A system without a runner of its own: the test plays the runners."""
    async with isolated_system(database, run_jobs=False) as (system, _):
        yield system


@pytest.fixture
async def sandbox() -> AsyncIterator[SandboxPool]:
    pool = SandboxPool(workers=1, timeout_ms=1000, max_memory_mb=64)
    await pool.start()
    yield pool
    await pool.close()


def executor(system: RunningSystem, sandbox: SandboxPool, metrics: Metrics | None = None) -> MigrationExecutor:
    s = system.services

    async def record(command: Any, ctx: Context | None) -> Any:
        return await s.bus.handle(command, ctx or Context("system:runner/second", new_id()))

    async def durably(action: Any) -> Any:
        return await action()

    return MigrationExecutor(s.migration_reads, sandbox, record, durably, MigrationOptions(batch_size=3, ack_wait=0),
                             metrics)


async def test_a_run_taken_over_writes_nothing_twice_and_reverts_everything_it_wrote(quiet: RunningSystem,
                                                                              sandbox: SandboxPool) -> None:
    s = quiet.services
    ink = await user(quiet, "takeover")
    name = await profile_schema(ink)
    blobs = await profiles(ink, name, 10)
    before = (await profiles(ink, name, 1, start=10))[0]
    before = await ink.migrate_blob(before.id, f"{name}@2.0.0")  # on the target before the run: not its business
    run = await ink.request_migration(f"{name}@2.0.0", "1.0.0", dry_run=False)

    # the lost attempt: started, wrote four blobs, recorded the progress of two
    started = (await s.bus.handle(StartMigration(run.id, "lost", 10), Context(LOST, new_id()))).aggregate
    changes = []
    for i, blob in enumerate(blobs[:4]):
        data = {"name": f"Person {i}", "birthYear": this_year() - (20 + i % 50), "email": ""}
        command = WriteMigratedBlob(blob.id, blob.version, f"{name}@2.0.0", data, run.id)
        saved = await s.bus.handle(command, Context(LOST, blob_write_id(run.id, blob.id, blob.version, False)))
        changes.append([blob.id, blob.version, saved.aggregate.version])
    await s.bus.handle(RecordMigrationProgress(run.id, started.attempts, 2, 0, 0, [], changes[:2]),
                       Context(LOST, new_id()))
    ink.observe_position(await s.repo.last_position())

    metrics = Metrics()
    answer = await executor(quiet, sandbox, metrics).process(run.id, "Migration.Requested", "second",
                                                             "system:runner/second")
    assert answer == "ack"
    assert metrics.migration_blobs.labels("migrated", "false")._value.get() == 8, "what this attempt recorded"
    done = await ink.get_migration(run.id, consistency="strong")
    assert (done.status, done.total, done.migrated, done.failed, done.skipped) == ("completed", 10, 10, 0, 0)
    for i, blob in enumerate(blobs):
        history = await s.store.load(Blob.TYPE, blob.id)
        assert [r.type for r in history] == ["Blob.Created", "Blob.Migrated"], f"blob {i} migrated once"
        assert history[-1].data["migration_id"] == run.id
    unrelated = await ink.get_blob(before.id)
    assert (unrelated.version, unrelated.data) == (before.version, before.data)
    saved = await s.migration_reads.migration(run.id)
    assert saved is not None and set(saved.aggregate.changed) == {b.id for b in blobs}

    again = await executor(quiet, sandbox).process(run.id, "Migration.Requested", "third", "system:runner/third")
    assert again == "ack", "a redelivery of a completed run does nothing"
    await ink.revert_migration(run.id)
    assert await executor(quiet, sandbox).process(run.id, "Migration.RevertRequested", "second", "x") == "ack"
    reverted = await ink.get_migration(run.id, consistency="strong")
    assert (reverted.status, reverted.reverted, reverted.revert_skipped) == ("reverted", 10, 0)
    for blob in blobs:
        now = await ink.get_blob(blob.id)
        assert (now.schema_id, now.data) == (blob.schema_id, blob.data)


async def _completed_run(ink: Any, s: Any, sandbox: SandboxPool, quiet: RunningSystem, lost_starts: int) -> Any:
    """Ten blobs migrated by a real run whose first ``lost_starts`` attempts were lost before doing anything."""
    name = await profile_schema(ink)
    blobs = await profiles(ink, name, 10)
    run = await ink.request_migration(f"{name}@2.0.0", "1.0.0", dry_run=False)
    for i in range(lost_starts):
        await s.bus.handle(StartMigration(run.id, f"lost-{i}", 10), Context(LOST, new_id()))
    assert await executor(quiet, sandbox).process(run.id, "Migration.Requested", "second", "x") == "ack"
    done = await ink.get_migration(run.id, consistency="strong")
    assert (done.status, done.migrated) == ("completed", 10)
    return run, blobs


async def test_a_run_that_needed_every_attempt_can_still_be_reverted(quiet: RunningSystem,
                                                                    sandbox: SandboxPool) -> None:
    """A revert counts its own attempts: before, a run that took 5 starts left its revert `reverting` for good."""
    s = quiet.services
    ink = await user(quiet, "every-attempt")
    run, blobs = await _completed_run(ink, s, sandbox, quiet, lost_starts=4)
    await ink.revert_migration(run.id)
    assert await executor(quiet, sandbox).process(run.id, "Migration.RevertRequested", "second", "x") == "ack"
    reverted = await ink.get_migration(run.id, consistency="strong")
    assert (reverted.status, reverted.reverted) == ("reverted", 10)
    for blob in blobs:
        now = await ink.get_blob(blob.id)
        assert (now.schema_id, now.data) == (blob.schema_id, blob.data)


async def test_a_revert_whose_attempts_are_used_up_stops_and_goes_on_when_asked_again(
        quiet: RunningSystem, sandbox: SandboxPool) -> None:
    async with await user(quiet, "stopped-revert") as ink:
        await _stopped_revert_goes_on(quiet, ink, sandbox)


async def _stopped_revert_goes_on(quiet: RunningSystem, ink: Any, sandbox: SandboxPool) -> None:
    s = quiet.services
    run, blobs = await _completed_run(ink, s, sandbox, quiet, lost_starts=0)
    await ink.revert_migration(run.id)

    # five lost attempts of the revert; the first put two blobs back and recorded one of them
    for i in range(5):
        started = (await s.bus.handle(StartRevert(run.id, f"lost-{i}"), Context(LOST, new_id()))).aggregate
        if i == 0:
            for blob in blobs[:2]:
                before, after = started.changed[blob.id]
                command = WriteMigratedBlob(blob.id, after, blob.schema_id, blob.data, run.id, revert=True)
                await s.bus.handle(command, Context(LOST, blob_write_id(run.id, blob.id, after, True)))
            await s.bus.handle(RecordRevertProgress(run.id, started.attempts, [blobs[0].id], []),
                               Context(LOST, new_id()))
    assert await executor(quiet, sandbox).process(run.id, "Migration.RevertRequested", "second", "x") == "term"
    stopped = await ink.get_migration(run.id, consistency="strong")
    assert (stopped.status, stopped.reverted) == ("completed", 1), "stopped, not reverting for good"
    assert stopped.error is not None and "revert stopped" in stopped.error and "request the revert again" in stopped.error
    for i, blob in enumerate(blobs):
        now = await ink.get_blob(blob.id)
        assert now.schema_id == (blob.schema_id if i < 2 else run.schema_id)
    async with aclosing(ink.subscribe(migration_id=run.id, since=run.position - 1, max_reconnects=3)) as events:
        async for event in events:
            if event.type == "migration.revert_stopped":  # subscribers are told, with the reason
                assert (event.data["status"], event.data["reverted"], event.data["error"]) == (
                    "completed", 1, stopped.error)
                break

    await ink.revert_migration(run.id)  # asked again: it goes on
    again = await ink.get_migration(run.id, consistency="strong")
    assert (again.status, again.error) == ("reverting", None)
    # the first request's message, redelivered (its answer lost): stale, it does nothing
    assert await executor(quiet, sandbox).process(run.id, "Migration.RevertRequested", "stale", "x", 1) == "ack"
    saved = await s.migration_reads.migration(run.id)
    assert saved is not None and (saved.aggregate.revert_started, saved.aggregate.revert_attempts) == (False, 0)
    assert await executor(quiet, sandbox).process(run.id, "Migration.RevertRequested", "second", "x", 2) == "ack"
    reverted = await ink.get_migration(run.id, consistency="strong")
    assert (reverted.status, reverted.reverted, reverted.revert_skipped, reverted.error) == ("reverted", 10, 0, None)
    for blob in blobs:
        now = await ink.get_blob(blob.id)
        assert (now.schema_id, now.data) == (blob.schema_id, blob.data)
        history = await s.store.load(Blob.TYPE, blob.id)
        assert [r.type for r in history] == ["Blob.Created", "Blob.Migrated", "Blob.Migrated"], "put back once"
