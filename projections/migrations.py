"""Migration runs as rows: status, counts and the first errors, following their events.

Every event carries what its row needs (counts and kept errors are
cumulative), so no row is read. ``changes.row_after`` folds a run's history
with the same changes, which is how command answers are shaped exactly like the
read model's without waiting for it.

A run's row is weighed for list pages (``PAGE_BYTES``) in parts, since each
event sets only some fields and no row is read: ``errors_bytes`` and
``revert_skipped_bytes`` weigh the two lists as JSON text (``projections/sizes.py``,
set whenever the list is), and ``MIGRATION_ROW_BYTES`` bounds everything else
(ids, schema ids, counts, times and the failure's ``error``, all bounded by the
domain). A row weighs the three together.
"""

from __future__ import annotations

from typing import ClassVar

from domain.migration import COMPLETED, FAILED, PENDING, REVERTED, REVERTING, RUNNING
from domain.recorded import Recorded

from projections.changes import Change, Update, Upsert, touched
from projections.sizes import json_text_bytes

MIGRATION_ROW_BYTES = 4 * 1024
"""An upper bound of a run's row as JSON text without its two lists: two schema ids of at most 193
characters, ``error`` of at most ``MAX_ERROR_MESSAGE`` (500) characters of up to 4 bytes each, and
scalars (checked by tests/unit/test_page_weights.py). 500 rows of it (``MAX_LIMIT``) stay within
``PAGE_BYTES``, so a page of runs without errors is cut by ``limit`` alone, as before."""


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
                "errors": [], "errors_bytes": json_text_bytes([]),
                "error": None,
                "reverted": 0, "revert_skipped": 0, "revert_skipped_blob_ids": [],
                "revert_skipped_bytes": json_text_bytes([]),
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
                fields["errors_bytes"] = json_text_bytes(data["errors"])
            return [Update("migrations", key, fields)]
        if kind == "Migration.Completed":
            return [Update("migrations", key, touched(record, status=COMPLETED, finished_at=record.at))]
        if kind == "Migration.Failed":
            return [Update("migrations", key, touched(record, status=FAILED, error=data["error"],
                                                     finished_at=record.at))]
        if kind == "Migration.RevertRequested":
            return [Update("migrations", key, touched(record, status=REVERTING, error=None))]
        if kind == "Migration.RevertStarted":
            return [Update("migrations", key, touched(record))]
        if kind == "Migration.RevertProgressed":
            fields = touched(record, reverted=data["reverted"], revert_skipped=data["skipped"])
            if data["skipped_ids"] is not None:
                fields["revert_skipped_blob_ids"] = data["skipped_ids"]
                fields["revert_skipped_bytes"] = json_text_bytes(data["skipped_ids"])
            return [Update("migrations", key, fields)]
        if kind == "Migration.RevertCompleted":
            return [Update("migrations", key, touched(record, status=REVERTED, reverted_at=record.at))]
        if kind == "Migration.RevertStopped":
            return [Update("migrations", key, touched(record, status=COMPLETED, error=data["error"]))]
        return []
