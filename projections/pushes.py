"""Live pushes as pure code: which subscribers an event concerns, and what they are told.

A subscriber follows a *topic*: one bucket (``("bucket", id)``) or one job
(``("job", id)``). A blob event is pushed to every bucket the blob is in after
it (for a deletion: the buckets it was in), a move to the bucket it left and
the one it entered; a job event of the four the contract names is pushed to
the job. ``Blob.Migrated`` changes a blob's schema and data, so its
subscribers see it as ``blob.updated``; ``Job.Requested``,
``Job.AttemptFailed`` and ``Job.Retried`` are not pushed (the contract names
``job.started|completed|failed|cancelled`` only).

Blob events other than a creation or a move do not carry the blob's buckets,
and the push carries the whole blob, so the caller hands in the aggregate's
state right after the event (``adapters/live/states.py`` keeps it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from domain.recorded import Recorded
from projections.documents import BlobOut

Topic = tuple[str, str]
"""``("bucket", bucket_id)`` or ``("job", job_id)``."""

BUCKET, JOB, MIGRATION = "bucket", "job", "migration"

BLOB_PUSHES: dict[str, str] = {
    "Blob.Created": "blob.created",
    "Blob.Updated": "blob.updated",
    "Blob.Migrated": "blob.updated",
    "Blob.Moved": "blob.moved",
    "Blob.Deleted": "blob.deleted",
}

JOB_PUSHES: dict[str, str] = {
    "Job.Started": "job.started",
    "Job.Completed": "job.completed",
    "Job.Failed": "job.failed",
    "Job.Cancelled": "job.cancelled",
}
"""The job events that are pushed: the one mapping to keep in step with ``domain/job.py``."""

MIGRATION_PUSHES: dict[str, str] = {
    "Migration.Started": "migration.started",
    "Migration.Progressed": "migration.progressed",
    "Migration.Completed": "migration.completed",
    "Migration.Failed": "migration.failed",
    "Migration.RevertRequested": "migration.reverting",
    "Migration.RevertProgressed": "migration.progressed",
    "Migration.RevertCompleted": "migration.reverted",
    "Migration.RevertStopped": "migration.revert_stopped",
}
"""The migration run events that are pushed (one per batch at most: progress is batched in the log)."""


@dataclass(frozen=True, slots=True)
class Push:
    topic: Topic
    type: str
    position: int
    data: dict[str, Any]


class JobState(Protocol):
    """What a job push reports (``domain.job.Job`` has these)."""

    status: str
    input_blob_id: str
    output_blob_id: str | None
    error: dict[str, str] | None


class MigrationState(Protocol):
    """What a migration push reports (``domain.migration.Migration`` has these)."""

    status: str
    dry_run: bool
    total: int
    migrated: int
    failed: int
    skipped: int
    reverted: int
    revert_skipped: int
    error: str | None


def pushed(record: Recorded) -> bool:
    """Whether this event can become a push at all (cheap: no state needed to say so)."""
    return record.type in BLOB_PUSHES or record.type in JOB_PUSHES or record.type in MIGRATION_PUSHES


def buckets_named(record: Recorded) -> list[str] | None:
    """The buckets a blob is in right after this event when the event itself says so (a creation,
    a move: no state needed), else None (the event leaves its buckets as they were)."""
    if record.type in ("Blob.Created", "Blob.Moved"):
        bucket_ids = record.data.get("bucket_ids")
        if isinstance(bucket_ids, list):
            return [str(b) for b in bucket_ids]
    return None


def blob_topics(record: Recorded, blob: BlobOut) -> list[str]:
    """The buckets told about this blob event (a move: the one it left, then the one it entered)."""
    if record.type == "Blob.Moved":
        return [record.data["from_bucket_id"], record.data["to_bucket_id"]]
    return list(blob.bucket_ids)


def blob_pushes(record: Recorded, blob: BlobOut) -> list[Push]:
    """``{bucket_id, blob_id, position, blob}`` for each bucket concerned; ``blob`` as it is after the event."""
    kind = BLOB_PUSHES.get(record.type)
    if kind is None:
        return []
    document = blob.model_dump(mode="json")
    return [
        Push((BUCKET, bucket_id), kind, record.position,
             {"bucket_id": bucket_id, "blob_id": record.aggregate_id, "position": record.position, "blob": document})
        for bucket_id in blob_topics(record, blob)
    ]


def job_pushes(record: Recorded, job: JobState) -> list[Push]:
    """``{job_id, status, input_blob_id, output_blob_id?, error?, position}``, the job as it is after the event."""
    kind = JOB_PUSHES.get(record.type)
    if kind is None:
        return []
    data: dict[str, Any] = {"job_id": record.aggregate_id, "status": job.status, "input_blob_id": job.input_blob_id}
    if job.output_blob_id is not None:
        data["output_blob_id"] = job.output_blob_id
    if job.error is not None:
        data["error"] = dict(job.error)
    data["position"] = record.position
    return [Push((JOB, record.aggregate_id), kind, record.position, data)]


def migration_pushes(record: Recorded, run: MigrationState) -> list[Push]:
    """``{migration_id, status, dry_run, total, migrated, failed, skipped, reverted, revert_skipped, error?,
    position}``, the run as it is after the event (``error`` while the run has one: failed, or its revert stopped)."""
    kind = MIGRATION_PUSHES.get(record.type)
    if kind is None:
        return []
    data: dict[str, Any] = {
        "migration_id": record.aggregate_id, "status": run.status, "dry_run": run.dry_run, "total": run.total,
        "migrated": run.migrated, "failed": run.failed, "skipped": run.skipped, "reverted": run.reverted,
        "revert_skipped": run.revert_skipped, "position": record.position,
    }
    if run.error is not None:
        data["error"] = run.error
    return [Push((MIGRATION, record.aggregate_id), kind, record.position, data)]


@dataclass(frozen=True, slots=True)
class Access:
    """What a bucket event says about who may follow the bucket: its owner (when the
    event names one) and whether it is gone."""

    topic: Topic
    owner_id: str | None
    deleted: bool


def bucket_access(record: Recorded) -> Access | None:
    if record.aggregate_type != BUCKET:
        return None
    owner = record.data.get("owner_id")
    return Access((BUCKET, record.aggregate_id), owner if isinstance(owner, str) else None,
                  record.type == "Bucket.Deleted")
