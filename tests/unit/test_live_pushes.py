"""The pure push mapping: which buckets or job an event is pushed to, and with what."""

from __future__ import annotations

from datetime import datetime, timezone
from types import SimpleNamespace
from typing import Any

from domain.recorded import Recorded
from projections.documents import BlobOut
from projections.pushes import blob_pushes, bucket_access, job_pushes, pushed

AT = datetime(2026, 11, 30, tzinfo=timezone.utc)


def rec(type_: str, data: dict[str, Any], position: int = 7, aggregate: str = "blob") -> Recorded:
    return Recorded(position=position, aggregate_type=aggregate, aggregate_id="b-1", type=type_, version=2, at=AT,
                    data=data)


def blob(bucket_ids: list[str]) -> BlobOut:
    return BlobOut(id="b-1", owner_id="u", schema_id=None, processor_id=None, data={"x": 1}, bucket_ids=bucket_ids,
                   version=2, created_at=AT, updated_at=AT)


def test_a_move_goes_to_the_bucket_it_left_and_the_one_it_entered_only() -> None:
    moved = rec("Blob.Moved", {"from_bucket_id": "A", "to_bucket_id": "B", "bucket_ids": ["B", "C"]})
    pushes = blob_pushes(moved, blob(["B", "C"]))
    assert [(p.topic, p.type) for p in pushes] == [(("bucket", "A"), "blob.moved"), (("bucket", "B"), "blob.moved")]
    assert pushes[0].data == {"bucket_id": "A", "blob_id": "b-1", "position": 7,
                              "blob": blob(["B", "C"]).model_dump(mode="json")}


def test_other_blob_events_go_to_every_bucket_the_blob_is_in_and_a_migration_is_an_update() -> None:
    for type_, kind in [("Blob.Created", "blob.created"), ("Blob.Updated", "blob.updated"),
                        ("Blob.Migrated", "blob.updated"), ("Blob.Deleted", "blob.deleted")]:
        pushes = blob_pushes(rec(type_, {}), blob(["A", "C"]))
        assert [(p.topic[1], p.type, p.position) for p in pushes] == [("A", kind, 7), ("C", kind, 7)]
    assert blob_pushes(rec("Blob.Created", {}), blob([])) == []


def test_only_the_four_named_job_events_are_pushed() -> None:
    job = SimpleNamespace(status="failed", input_blob_id="in", output_blob_id=None,
                          error={"code": "timeout", "message": "slow"})
    failed = job_pushes(rec("Job.Failed", {}, aggregate="job"), job)
    assert failed[0].topic == ("job", "b-1")
    assert failed[0].data == {"job_id": "b-1", "status": "failed", "input_blob_id": "in",
                              "error": {"code": "timeout", "message": "slow"}, "position": 7}
    for quiet in ("Job.Requested", "Job.AttemptFailed", "Job.Retried"):
        assert job_pushes(rec(quiet, {}, aggregate="job"), job) == [] and not pushed(rec(quiet, {}, aggregate="job"))


def test_bucket_events_say_who_owns_the_bucket_and_whether_it_is_gone() -> None:
    created = bucket_access(rec("Bucket.Created", {"owner_id": "u"}, aggregate="bucket"))
    assert created is not None and (created.owner_id, created.deleted) == ("u", False)
    deleted = bucket_access(rec("Bucket.Deleted", {}, aggregate="bucket"))
    assert deleted is not None and (deleted.owner_id, deleted.deleted) == (None, True)
    assert bucket_access(rec("Blob.Created", {})) is None
