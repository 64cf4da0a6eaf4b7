"""The seed's Task 12 (user-profile 1.0.0 → 2.0.0: ``birthYear`` = this year − age, ``email`` ""),
as written, run as a migration over 1,000 stored blobs: first dry, then for real."""

from __future__ import annotations

from tests.integration.migration.helpers import profile_schema, profiles, this_year
from tests.support.sdk import SignUp

COUNT = 1000


async def test_task12_over_1000_blobs_dry_run_writes_nothing_and_counts_like_the_real_run(sign_up: SignUp) -> None:
    ink = await sign_up("task12")
    name = await profile_schema(ink)
    blobs = await profiles(ink, name, COUNT)
    before = {b.id: (b.version, b.data) for b in blobs}

    dry = await ink.request_migration(f"{name}@2.0.0", "1.0.0")
    assert (dry.status, dry.dry_run) == ("pending", True), "dry by default"
    dry = await ink.wait_for_migration(dry.id)
    assert dry.status == "completed"
    assert (dry.total, dry.migrated, dry.failed, dry.skipped, dry.errors) == (COUNT, COUNT, 0, 0, [])
    for blob in blobs[:: COUNT // 20]:  # nothing written: still 1.0.0, same version, same data
        now = await ink.get_blob(blob.id)
        assert (now.schema_id, now.version, now.data) == (f"{name}@1.0.0", *before[blob.id])
    assert (await ink.list_blobs(schema_id=f"{name}@2.0.0", limit=1)).items == []

    seen: list[int] = []
    run = await ink.request_migration(f"{name}@2.0.0", "1.0.0", dry_run=False)
    assert run.dry_run is False
    run = await ink.wait_for_migration(run.id, on_progress=lambda r: seen.append(r.migrated + r.failed + r.skipped))
    assert run.status == "completed"
    assert (run.total, run.migrated, run.failed, run.skipped) == (dry.total, dry.migrated, dry.failed, dry.skipped)
    assert seen == sorted(seen), "progress only moves forward"
    assert run.started_at is not None and run.finished_at is not None and run.finished_at >= run.started_at

    for i, blob in enumerate(blobs):
        if i % 50:
            continue
        now = await ink.get_blob(blob.id)
        assert now.schema_id == f"{name}@2.0.0" and now.version == before[blob.id][0] + 1
        assert now.data == {"name": f"Person {i}", "birthYear": this_year() - (20 + i % 50), "email": ""}
    assert (await ink.list_blobs(schema_id=f"{name}@1.0.0", limit=1)).items == []
    listed = (await ink.list_migrations()).items
    assert [m.id for m in listed] == [run.id, dry.id], "newest first"
