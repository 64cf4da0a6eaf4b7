"""Jobs as rows: one per job, its status and times following its events.

Every event carries what its row needs, so no row is read. ``changes.row_after``
folds a job's history with the same changes, which is how command answers (cancel,
retry) are shaped exactly like the read model's without waiting for it.

A job's row is weighed for list pages (``PAGE_BYTES``) in parts, since each event
sets only some fields and no row is read: ``error_bytes`` and ``last_error_bytes``
weigh the two errors as JSON text (``projections/sizes.py``; a message may be
2,000 characters the user's code chose), and ``JOB_ROW_BYTES`` bounds the rest.
"""

from __future__ import annotations

from typing import ClassVar

from domain.job import CANCELLED, COMPLETED, FAILED, PENDING, RUNNING
from domain.recorded import Recorded

from projections.changes import Change, Update, Upsert, touched
from projections.sizes import json_text_bytes

JOB_ROW_BYTES = 2 * 1024
"""An upper bound of a job's row as JSON text without its two errors: ids, the processor's type (at
most 64 characters), the trigger, counts and times (checked by tests/unit/test_page_weights.py). 500
rows of it (``MAX_LIMIT``) are half of ``PAGE_BYTES``: a page of jobs without errors is cut by ``limit``."""

_NO_ERROR = json_text_bytes(None)


class JobProjection:
    name: ClassVar[str] = "jobs"
    tables: ClassVar[tuple[str, ...]] = ("jobs",)

    def changes(self, record: Recorded) -> list[Change]:
        data, key = record.data, {"id": record.aggregate_id}
        kind = record.type
        if kind == "Job.Requested":
            row = {
                **key,
                "owner_id": data["owner_id"],
                "processor_id": data["processor_id"],
                "processor_version": data["processor_version"],
                "processor_type": data["processor_type"],
                "input_blob_id": data["input_blob_id"],
                "input_version": data["input_version"],
                "output_blob_id": None,
                "status": PENDING,
                "error": None, "error_bytes": _NO_ERROR,
                "last_error": None, "last_error_bytes": _NO_ERROR,
                "attempts": 0,
                "trigger": data["trigger"],
                "depth": data["depth"],
                "created_at": record.at,
                "started_at": None,
                "finished_at": None,
                **touched(record),
            }
            return [Upsert("jobs", ("id",), row)]
        if kind == "Job.Started":
            return [Update("jobs", key, touched(record, status=RUNNING, attempts=data["attempt"], started_at=record.at))]
        if kind == "Job.AttemptFailed":
            fields = touched(record, status=PENDING, last_error=data["error"],
                             last_error_bytes=json_text_bytes(data["error"]))
            return [Update("jobs", key, fields)]
        if kind == "Job.Completed":
            fields = touched(record, status=COMPLETED, output_blob_id=data["output_blob_id"], finished_at=record.at)
            return [Update("jobs", key, fields)]
        if kind == "Job.Failed":
            fields = touched(record, status=FAILED, error=data["error"], error_bytes=json_text_bytes(data["error"]),
                             finished_at=record.at)
            return [Update("jobs", key, fields)]
        if kind == "Job.Cancelled":
            return [Update("jobs", key, touched(record, status=CANCELLED, finished_at=record.at))]
        if kind == "Job.Retried":
            fields = touched(record, status=PENDING, error=None, last_error=None, output_blob_id=None,
                            started_at=None, finished_at=None, error_bytes=_NO_ERROR, last_error_bytes=_NO_ERROR)
            return [Update("jobs", key, fields)]
        return []
