"""Migration runs as rows: status, counts and the first errors, following their events.

Every event carries what its row needs (counts and kept errors are
cumulative), so no row is read. ``changes.row_after`` folds a run's history
with the same changes, which is how command answers are shaped exactly like the
read model's without waiting for it.
"""

from __future__ import annotations

from typing import ClassVar

from domain.migration import COMPLETED, FAILED, PENDING, REVERTED, REVERTING, RUNNING
from domain.recorded import Recorded

from projections.changes import Change, Update, Upsert, touched



class MigrationProjection:
    name: ClassVar[str] = "migrations"
    tables: ClassVar[tuple[str, ...]] = ("migrations",)

    def changes(self, record: Recorded) -> list[Change]:
        data, key, kind = record.data, {"id": record.aggregate_id}, record.type
        if kind == "Migration.Requested":
            row = {
                **key,
                "owner_id": data["owner_id"],
                "schema_id": data["schema_id"],
                "from_schema_id": data["from_schema_id"],
                "bucket_id": data["bucket_id"],
                "dry_run": data["dry_run"],
                "status": PENDING,
                "total": 0, "migrated": 0, "failed": 0, "skipped": 0,
                "errors": [],
                "error": None,
                "reverted": 0, "revert_skipped": 0, "revert_skipped_blob_ids": [],
                "created_at": record.at, "started_at": None, "finished_at": None, "reverted_at": None,
                **touched(record),
            }
            return [Upsert("migrations", ("id",), row)]
        if kind == "Migration.Started":
            fields = touched(record, status=RUNNING, total=data["total"])
            if data["attempt"] == 1:
                fields["started_at"] = record.at
            return [Update("migrations", key, fields)]
        if kind == "Migration.Progressed":
            fields = touched(record, migrated=data["migrated"], failed=data["failed"], skipped=data["skipped"])
            if data["errors"] is not None:
                fields["errors"] = data["errors"]
            return [Update("migrations", key, fields)]
        if kind == "Migration.Completed":
            return [Update("migrations", key, touched(record, status=COMPLETED, finished_at=record.at))]
        if kind == "Migration.Failed":
            return [Update("migrations", key, touched(record, status=FAILED, error=data["error"],
                                                     finished_at=record.at))]
        if kind == "Migration.RevertRequested":
            return [Update("migrations", key, touched(record, status=REVERTING))]
        if kind == "Migration.RevertStarted":
            return [Update("migrations", key, touched(record))]
        if kind == "Migration.RevertProgressed":
            fields = touched(record, reverted=data["reverted"], revert_skipped=data["skipped"])
            if data["skipped_ids"] is not None:
                fields["revert_skipped_blob_ids"] = data["skipped_ids"]
            return [Update("migrations", key, fields)]
        if kind == "Migration.RevertCompleted":
            return [Update("migrations", key, touched(record, status=REVERTED, reverted_at=record.at))]
        return []
