"""Jobs as rows: one per job, its status and times following its events.

Every event carries what its row needs, so no row is read. ``changes.row_after``
folds a job's history with the same changes, which is how command answers (cancel,
retry) are shaped exactly like the read model's without waiting for it.
"""

from __future__ import annotations

from typing import ClassVar

from domain.job import CANCELLED, COMPLETED, FAILED, PENDING, RUNNING
from domain.recorded import Recorded

from projections.changes import Change, Update, Upsert, touched



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
                "error": None,
                "last_error": None,
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
            return [Update("jobs", key, touched(record, status=PENDING, last_error=data["error"]))]
        if kind == "Job.Completed":
            fields = touched(record, status=COMPLETED, output_blob_id=data["output_blob_id"], finished_at=record.at)
            return [Update("jobs", key, fields)]
        if kind == "Job.Failed":
            return [Update("jobs", key, touched(record, status=FAILED, error=data["error"], finished_at=record.at))]
        if kind == "Job.Cancelled":
            return [Update("jobs", key, touched(record, status=CANCELLED, finished_at=record.at))]
        if kind == "Job.Retried":
            fields = touched(record, status=PENDING, error=None, last_error=None, output_blob_id=None,
                            started_at=None, finished_at=None)
            return [Update("jobs", key, fields)]
        return []
