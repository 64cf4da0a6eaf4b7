"""``Blob.Migrated`` events written before migration runs (class version 1: no ``migration_id``,
no ``revert``) are still in the log: they load, project, answer history and ``as_of``, and such a
blob takes part in a run like any other."""

from __future__ import annotations

from datetime import datetime, timezone

from domain.ids import new_id
from domain.recorded import NewEvent
from tests.integration.migration.helpers import profile_schema
from tests.support.sdk import SignUp
from tests.support.system import RunningSystem


async def test_a_version_1_blob_migrated_event_in_the_log_still_loads(system: RunningSystem, sign_up: SignUp) -> None:
    ink = await sign_up("old-events")
    name = await profile_schema(ink, v3=True)
    blob = await ink.create_blob({"name": "Old", "age": 50}, f"{name}@1.0.0")
    # what a single-blob migrate appended before this issue: class version 1, schema_id and data only
    old = NewEvent(type="Blob.Migrated", version=blob.version + 1, at=datetime.now(timezone.utc),
                   data={"schema_id": f"{name}@2.0.0", "data": {"name": "Old", "birthYear": 1976, "email": ""}},
                   class_version=1, actor=ink.user_id)
    appended = await system.services.store.append("blob", blob.id, old, blob.position, new_id())
    ink.observe_position(appended.position)

    now = await ink.get_blob(blob.id)
    assert (now.schema_id, now.version, now.data) == (f"{name}@2.0.0", 2, {"name": "Old", "birthYear": 1976,
                                                                            "email": ""})
    history = (await ink.blob_history(blob.id)).items
    assert [h.type for h in history] == ["Blob.Created", "Blob.Migrated"]
    assert (await ink.get_blob(blob.id, as_of=appended.position)).schema_id == f"{name}@2.0.0"
    assert (await ink.get_blob(blob.id, as_of=blob.position)).schema_id == f"{name}@1.0.0"

    updated = await ink.update_blob(blob.id, {"name": "Old, edited", "birthYear": 1976, "email": "o@x"})
    assert updated.version == 3, "the write side rebuilds the blob from the old event"
    run = await ink.wait_for_migration((await ink.request_migration(f"{name}@3.0.0", "2.0.0", dry_run=False)).id)
    assert (run.total, run.migrated) == (1, 1)
    final = await ink.get_blob(blob.id)
    assert final.data == {"name": "Old, edited", "birthYear": 1976, "email": "o@x", "contact": "o@x"}
