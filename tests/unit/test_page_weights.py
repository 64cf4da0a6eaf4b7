"""``MIGRATION_ROW_BYTES`` and ``JOB_ROW_BYTES`` bound a row without its weighed parts, at the domain's largest.

The stores weigh a run (a job) as the constant plus its stored list (error) weights; if the
rest of the row could outgrow the constant, a page could pass ``PAGE_BYTES``.
"""

from __future__ import annotations

from datetime import UTC, datetime

from domain.ids import new_id
from domain.migration import MAX_ERROR_MESSAGE
from domain.schema import MAX_VERSION_LENGTH
from projections.documents import JobOut, MigrationOut
from projections.jobs import JOB_ROW_BYTES
from projections.migrations import MIGRATION_ROW_BYTES
from projections.read_model import MAX_LIMIT, PAGE_BYTES
from projections.sizes import json_text_bytes


def test_the_largest_run_without_lists_weighs_less_than_migration_row_bytes() -> None:
    schema_id = "n" * 64 + "@" + "9" * MAX_VERSION_LENGTH
    now = datetime.now(UTC)
    big = 2**63 - 1
    run = MigrationOut.model_validate({
        "id": new_id(), "owner_id": new_id(), "schema_id": schema_id, "from_schema_id": schema_id,
        "bucket_id": new_id(), "dry_run": False, "status": "reverting", "total": big, "migrated": big,
        "failed": big, "skipped": big, "errors": [], "error": "😀" * MAX_ERROR_MESSAGE, "reverted": big,
        "revert_skipped": big, "revert_skipped_blob_ids": [], "created_at": now, "started_at": now,
        "finished_at": now, "reverted_at": now, "updated_at": now, "version": 2**31 - 1, "position": big,
    })
    assert json_text_bytes(run.model_dump(mode="json")) <= MIGRATION_ROW_BYTES
    assert MAX_LIMIT * MIGRATION_ROW_BYTES <= PAGE_BYTES  # a page of plain runs is cut by ``limit`` alone


def test_the_largest_job_without_errors_weighs_less_than_job_row_bytes() -> None:
    now = datetime.now(UTC)
    big = 2**63 - 1
    job = JobOut.model_validate({
        "id": new_id(), "status": "cancelled", "processor_id": new_id(), "processor_version": 2**31 - 1,
        "processor_type": "t" * 64, "input_blob_id": new_id(), "output_blob_id": new_id(), "error": None,
        "last_error": None, "attempts": 2**31 - 1, "trigger": {"on": "blob.migrated", "blob_id": new_id(),
                                                                "position": big},
        "depth": 2**31 - 1, "owner_id": new_id(), "version": 2**31 - 1, "created_at": now, "started_at": now,
        "finished_at": now, "updated_at": now, "position": big,
    })
    assert json_text_bytes(job.model_dump(mode="json")) <= JOB_ROW_BYTES
    assert MAX_LIMIT * JOB_ROW_BYTES <= PAGE_BYTES
