"""What a run moves and how: chains of transforms, per-blob errors, a bucket's tree, refused requests."""

from __future__ import annotations

import asyncio
import uuid

from adapters.client import ConflictError, ForbiddenError, NotFoundError, ValidationFailedError
from tests.integration.migration.helpers import PROFILE_V1, profile_schema, profiles, this_year
from tests.support.sdk import SignUp, fails
from tests.support.system import RunningSystem

# Fails some inputs on purpose, each in its own way: by age.
TROUBLESOME = """
function migrate(data) {
  if (data.age === 21) { while (true) {} }                                   // loops
  if (data.age === 22) { var a = []; while (true) { a.push(new Array(1e6).fill(1)); } }  // bombs memory
  if (data.age === 23) { return 42; }                                        // not an object
  if (data.age === 24) { throw new Error('no age 24 here'); }                 // throws
  if (data.age === 25) { return {name: data.name, birthYear: 'long ago', email: ''}; }  // invalid for 2.0.0
  return {name: data.name, birthYear: 2000 - data.age, email: ''};
}
"""
TARGET = {"type": "object", "properties": {"name": {"type": "string"}, "birthYear": {"type": "number"},
                                           "email": {"type": "string"}}}


async def test_a_two_step_chain_applies_both_transforms_in_order(sign_up: SignUp) -> None:
    ink = await sign_up("chain")
    name = await profile_schema(ink, v3=True)
    blobs = await profiles(ink, name, 30)
    run = await ink.wait_for_migration((await ink.request_migration(f"{name}@3.0.0", "1.0.0", dry_run=False)).id)
    assert (run.status, run.total, run.migrated, run.failed, run.skipped) == ("completed", 30, 30, 0, 0)
    for i in (0, 7, 29):
        blob = await ink.get_blob(blobs[i].id)
        assert blob.schema_id == f"{name}@3.0.0"
        # 1.0.0 → 2.0.0 makes birthYear and an empty email; 2.0.0 → 3.0.0 adds contact from them
        assert blob.data == {"name": f"Person {i}", "birthYear": this_year() - (20 + i % 50), "email": "",
                             "contact": f"Person {i}"}
        assert blob.version == blobs[i].version + 1, "one event per blob, however long the chain"


async def test_a_transform_that_fails_some_blobs_reports_each_and_leaves_them_as_they_were(sign_up: SignUp) -> None:
    ink = await sign_up("troubles")
    name = f"troubled-{uuid.uuid4().hex[:8]}"
    await ink.register_schema(name, "1.0.0", PROFILE_V1)
    await ink.register_schema(name, "2.0.0", TARGET, {"from_version": "1.0.0", "transform": TROUBLESOME})
    blobs = await profiles(ink, name, 12)  # ages 20..31: 21 to 25 fail, one way each
    run = await ink.request_migration(f"{name}@2.0.0", "1.0.0", dry_run=False)
    run = await ink.wait_for_migration(run.id, timeout=120)
    assert (run.status, run.total, run.migrated, run.failed, run.skipped) == ("completed", 12, 7, 5, 0)
    by_blob = {e.blob_id: e for e in run.errors}
    assert set(by_blob) == {b.id for b in blobs[1:6]}
    assert "ran longer than" in by_blob[blobs[1].id].message, run.errors  # the loop ran out of time
    assert "memory" in by_blob[blobs[2].id].message.lower(), run.errors
    assert "not an object" in by_blob[blobs[3].id].message
    assert "no age 24 here" in by_blob[blobs[4].id].message
    assert by_blob[blobs[5].id].path == "/birthYear", "an invalid result names the field the target refuses"
    for blob in blobs[1:6]:
        now = await ink.get_blob(blob.id)
        assert (now.schema_id, now.version, now.data) == (blob.schema_id, blob.version, blob.data)
    fine = await ink.get_blob(blobs[0].id)
    assert fine.schema_id == f"{name}@2.0.0" and fine.data == {"name": "Person 0", "birthYear": 1980, "email": ""}
    assert (await ink.health()).status == "healthy", "the server stays healthy"
    again = await ink.wait_for_migration((await ink.request_migration(f"{name}@2.0.0", "1.0.0")).id, timeout=120)
    assert (again.total, again.migrated, again.failed) == (5, 0, 5), "a dry run finds the same failures"


# A target whose check of "slow" applies one integer check 2^30 times: minutes, unless stopped at the budget.
SLOW_TO_CHECK = {
    "$defs": {**{f"a{i}": {"allOf": [{"$ref": f"#/$defs/a{i + 1}"}] * 2} for i in range(30)},
              "a30": {"type": "integer"}},
    "type": "object",
    "properties": {"name": {"type": "string"}, "slow": {"$ref": "#/$defs/a0"}},
}
MARK_ONE_SLOW = "function migrate(d) { var o = {name: d.name}; if (d.age === 21) { o.slow = 1; } return o; }"


async def test_a_blob_whose_check_runs_over_the_validation_budget_fails_alone(sign_up: SignUp) -> None:
    """The stopped validation is that blob's error: the others are migrated and the run completes (it used to
    crash the batch, be taken over five times and end failed with a misleading reason, half migrated)."""
    ink = await sign_up("slowcheck")
    name = f"slow-check-{uuid.uuid4().hex[:8]}"
    await ink.register_schema(name, "1.0.0", PROFILE_V1)
    await ink.register_schema(name, "2.0.0", SLOW_TO_CHECK, {"from_version": "1.0.0", "transform": MARK_ONE_SLOW})
    blobs = await profiles(ink, name, 3)  # ages 20, 21, 22: the second is checked too long
    run = await ink.wait_for_migration((await ink.request_migration(f"{name}@2.0.0", "1.0.0", dry_run=False)).id,
                                       timeout=60)
    assert (run.status, run.total, run.migrated, run.failed) == ("completed", 3, 2, 1), run
    [error] = run.errors
    assert error.blob_id == blobs[1].id and "took longer than its budget" in error.message, run.errors
    slow = await ink.get_blob(blobs[1].id)
    assert (slow.schema_id, slow.version, slow.data) == (blobs[1].schema_id, blobs[1].version, blobs[1].data)
    assert (await ink.get_blob(blobs[2].id)).data == {"name": "Person 2"}


SLOW = "function migrate(d) { var end = Date.now() + 150; while (Date.now() < end) {} return d; }"


async def test_a_running_migration_counts_among_its_owners_running_work(sign_up: SignUp,
                                                                        system: RunningSystem) -> None:
    """Every runner counts what a user runs at once (``job_max_running_per_user``) from the read model:
    a migration run holds a slot as a job does, so it is counted there too (it was not, and a user's
    runs held slots on every runner past the per-user limit)."""
    ink = await sign_up("slots")
    name = f"slow-{uuid.uuid4().hex[:8]}"
    await ink.register_schema(name, "1.0.0", PROFILE_V1)
    await ink.register_schema(name, "2.0.0", PROFILE_V1, {"from_version": "1.0.0", "transform": SLOW})
    await profiles(ink, name, 12)  # about 2 s of transforms
    run = await ink.request_migration(f"{name}@2.0.0", "1.0.0", dry_run=True)
    assert ink.user_id is not None
    seen = False
    async with asyncio.timeout(30):
        while not seen:
            seen = run.id in await system.services.reads.model.running_job_ids(ink.user_id)
            if (await ink.get_migration(run.id)).status in ("completed", "failed"):
                break
            await asyncio.sleep(0.05)
    assert seen, "the run was never counted while it ran"
    done = await ink.wait_for_migration(run.id, timeout=60)
    assert done.status == "completed" and run.id not in await system.services.reads.model.running_job_ids(ink.user_id)


async def test_a_run_within_a_bucket_moves_the_blobs_of_its_tree_only(sign_up: SignUp) -> None:
    ink = await sign_up("tree")
    name = await profile_schema(ink)
    top = await ink.create_bucket("top", "folder")
    sub = await ink.create_bucket("sub", "folder", parent_id=top.id)
    other = await ink.create_bucket("other", "folder")
    inside = await profiles(ink, name, 3, bucket_ids=[top.id])
    deeper = await profiles(ink, name, 2, bucket_ids=[sub.id], start=3)
    outside = await profiles(ink, name, 2, bucket_ids=[other.id], start=5)
    loose = await profiles(ink, name, 1, start=7)
    run = await ink.request_migration(f"{name}@2.0.0", "1.0.0", bucket_id=top.id, dry_run=False)
    run = await ink.wait_for_migration(run.id)
    assert (run.bucket_id, run.total, run.migrated) == (top.id, 5, 5)
    for blob in inside + deeper:
        assert (await ink.get_blob(blob.id)).schema_id == f"{name}@2.0.0"
    for blob in outside + loose:
        assert (await ink.get_blob(blob.id)).schema_id == f"{name}@1.0.0"


async def test_requests_that_cannot_run_are_refused_before_anything_runs(sign_up: SignUp) -> None:
    ink = await sign_up("refused")
    name = await profile_schema(ink)
    await ink.register_schema(name, "4.0.0", PROFILE_V1)  # no migration leads to it
    await profiles(ink, name, 2)
    with fails(ValidationFailedError):
        await ink.request_migration(f"{name}@4.0.0", "1.0.0")
    with fails(ValidationFailedError):
        await ink.request_migration(f"{name}@1.0.0", "2.0.0")  # transforms only go forward
    with fails(ValidationFailedError):
        await ink.request_migration(f"{name}@2.0.0", "9.9.9")
    with fails(ValidationFailedError):
        await ink.request_migration(f"{name}@2.0.0", "not-a-version")
    with fails(NotFoundError):
        await ink.request_migration("no-such-schema-here@2.0.0", "1.0.0")

    other = await sign_up("someone-else")
    with fails(ForbiddenError):
        await other.request_migration(f"{name}@2.0.0", "1.0.0")
    theirs = await other.create_bucket("theirs", "folder")
    with fails(ForbiddenError):
        await ink.request_migration(f"{name}@2.0.0", "1.0.0", bucket_id=theirs.id)
    assert (await ink.list_migrations()).items == [], "nothing was requested"

    dry = await ink.wait_for_migration((await ink.request_migration(f"{name}@2.0.0", "1.0.0")).id)
    with fails(ConflictError):
        await ink.revert_migration(dry.id)  # a dry run changed nothing
    with fails(ForbiddenError):
        await other.get_migration(dry.id)
    with fails(ForbiddenError):
        await other.revert_migration(dry.id)


async def test_progress_is_pushed_on_the_live_channel(sign_up: SignUp) -> None:
    ink = await sign_up("pushes")
    name = await profile_schema(ink)
    await profiles(ink, name, 250)  # three batches of at most 100
    run = await ink.request_migration(f"{name}@2.0.0", "1.0.0", dry_run=False)
    seen: list[tuple[str, int, str]] = []
    async for event in ink.subscribe(migration_id=run.id, since=run.position - 1, max_reconnects=3):
        seen.append((event.type, event.data["migrated"], event.data["status"]))
        if event.type in ("migration.completed", "migration.failed"):
            break
    types = [t for t, _, _ in seen]
    assert types[0] == "migration.started" and types[-1] == "migration.completed"
    assert types.count("migration.progressed") == 3, "one push per batch, not per blob"
    assert [m for _, m, _ in seen] == sorted(m for _, m, _ in seen) and seen[-1][1] == 250
