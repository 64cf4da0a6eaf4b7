"""Runs never overwrite an editor, run once, and revert exactly what they changed."""

from __future__ import annotations

import asyncio
import uuid

from adapters.client import ConflictError, InkstreamClient
from tests.integration.migration.helpers import PROFILE_V1, PROFILE_V2, profile_schema, profiles, this_year
from tests.support.sdk import SignUp, fails

# Task 12's transform, slowed down (busy for 400 ms per document) so that editors can act while it runs.
SLOW_TO_V2 = """
function migrate(data) {
  var until = Date.now() + 400; while (Date.now() < until) {}
  return {name: data.name, birthYear: new Date().getFullYear() - data.age, email: ""};
}
"""


async def _started(ink: InkstreamClient, migration_id: str, since: int) -> None:
    """Once the run has started: its ``migration.started`` push, straight from the log (the read model may lag)."""
    async for event in ink.subscribe(migration_id=migration_id, since=since, max_reconnects=3):
        if event.type == "migration.started":
            return


async def test_an_editors_change_made_while_the_run_goes_on_is_never_overwritten(sign_up: SignUp) -> None:
    ink = await sign_up("editor")
    name = f"slow-profile-{uuid.uuid4().hex[:8]}"
    await ink.register_schema(name, "1.0.0", PROFILE_V1)
    await ink.register_schema(name, "2.0.0", PROFILE_V2, {"from_version": "1.0.0", "transform": SLOW_TO_V2})
    blobs = await profiles(ink, name, 8)
    run = await ink.request_migration(f"{name}@2.0.0", "1.0.0", dry_run=False)
    await asyncio.wait_for(_started(ink, run.id, run.position - 1), timeout=60)
    # While the batch is being transformed (3.2 s), one editor changes a blob's data and
    # another moves a blob to 2.0.0 themselves.
    edited = await ink.update_blob(blobs[0].id, {"name": "Edited meanwhile", "age": 40})
    migrated_by_hand = await ink.migrate_blob(blobs[1].id, f"{name}@2.0.0")
    run = await ink.wait_for_migration(run.id, timeout=120)
    assert run.status == "completed"
    assert (run.total, run.migrated, run.failed, run.skipped) == (8, 7, 0, 1)

    first = await ink.get_blob(blobs[0].id)
    assert first.schema_id == f"{name}@2.0.0" and first.version == edited.version + 1
    assert first.data == {"name": "Edited meanwhile", "birthYear": this_year() - 40, "email": ""}, \
        "the edit was migrated, not overwritten with the data read before it"
    second = await ink.get_blob(blobs[1].id)
    assert (second.version, second.data) == (migrated_by_hand.version, migrated_by_hand.data), \
        "a blob someone else moved meanwhile is skipped"
    history = (await ink.blob_history(blobs[1].id)).items
    assert [h.type for h in history] == ["Blob.Created", "Blob.Migrated"]


async def test_a_completed_run_is_not_run_again_unless_blobs_are_still_on_its_source(sign_up: SignUp) -> None:
    ink = await sign_up("once")
    name = await profile_schema(ink)
    await profiles(ink, name, 5)
    first = await ink.wait_for_migration((await ink.request_migration(f"{name}@2.0.0", "1.0.0",
                                                                      dry_run=False)).id)
    assert (first.status, first.migrated) == ("completed", 5)
    with fails(ConflictError):
        await ink.request_migration(f"{name}@2.0.0", "1.0.0", dry_run=False)
    with fails(ConflictError):
        await ink.request_migration(f"{name}@2.0.0", "1.0.0")
    late = await ink.create_blob({"name": "Late", "age": 30}, f"{name}@1.0.0")
    second = await ink.wait_for_migration((await ink.request_migration(f"{name}@2.0.0", "1.0.0",
                                                                       dry_run=False)).id)
    assert (second.status, second.total, second.migrated) == ("completed", 1, 1), "only the blobs still on 1.0.0"
    assert (await ink.get_blob(late.id)).schema_id == f"{name}@2.0.0"


async def test_revert_restores_exactly_what_the_run_changed_and_leaves_later_edits_alone(sign_up: SignUp) -> None:
    ink = await sign_up("revert")
    name = await profile_schema(ink)
    blobs = await profiles(ink, name, 6)
    run = await ink.wait_for_migration((await ink.request_migration(f"{name}@2.0.0", "1.0.0",
                                                                    dry_run=False)).id)
    assert run.migrated == 6
    after_run = run.position
    later = await ink.update_blob(blobs[2].id, {"name": "Edited after the run", "birthYear": 1990, "email": "e@x"})

    reverting = await ink.revert_migration(run.id)
    assert reverting.status == "reverting"
    with fails(ConflictError):
        await ink.revert_migration(run.id)  # once
    done = await ink.wait_for_migration(run.id)
    assert done.status == "reverted" and done.reverted_at is not None
    assert (done.reverted, done.revert_skipped, done.revert_skipped_blob_ids) == (5, 1, [blobs[2].id])
    assert (done.migrated, done.total) == (6, 6), "the run's own counts stay"

    for i, blob in enumerate(blobs):
        now = await ink.get_blob(blob.id)
        if i == 2:
            assert (now.schema_id, now.version, now.data) == (f"{name}@2.0.0", later.version, later.data)
        else:
            assert (now.schema_id, now.data) == (blob.schema_id, blob.data), "exactly the previous data"
            assert now.version == blob.version + 2, "as new events: migrated, then put back"
    history = (await ink.blob_history(blobs[0].id)).items
    assert [h.type for h in history] == ["Blob.Created", "Blob.Migrated", "Blob.Migrated"]
    assert history[1].data["migration_id"] == run.id and history[1].data["revert"] is False
    assert history[2].data["migration_id"] == run.id and history[2].data["revert"] is True
    assert (await ink.get_blob(blobs[0].id, as_of=after_run)).schema_id == f"{name}@2.0.0"
    assert (await ink.get_blob(blobs[0].id, as_of=history[0].position)).data == blobs[0].data

    again = await ink.wait_for_migration((await ink.request_migration(f"{name}@2.0.0", "1.0.0",
                                                                      dry_run=False)).id)
    assert (again.total, again.migrated) == (5, 5), "reverted blobs are on 1.0.0 again, so they may run again"
