"""``BOOK_ROW_BYTES``, ``JOB_ROW_BYTES`` and ``MIGRATION_ROW_BYTES`` bound a row without its weighed parts.

The stores weigh a book (a job, a run) as the constant plus its stored weights; if the
rest of the row could outgrow the constant, a page could pass ``PAGE_BYTES``.
"""

from __future__ import annotations

import itertools
import uuid
from datetime import UTC, datetime

from domain.book import MAX_TITLE
from domain.migration import MAX_ERROR_MESSAGE
from domain.schema import MAX_VERSION_LENGTH
from projections.books import BOOK_ROW_BYTES
from projections.documents import BookSummary, JobOut, MigrationOut
from projections.jobs import JOB_ROW_BYTES
from projections.migrations import MIGRATION_ROW_BYTES
from projections.read_model import MAX_LIMIT, PAGE_BYTES
from projections.sizes import json_text_bytes

_IDS = itertools.count(1)


def new_id() -> str:
    """An id of an id's length (36 characters) made of digits and dashes only: a random one's hex
    can hold a digit, an ``e`` and digits, which ``json_text_bytes`` weighs as a number's exponent,
    so the row's bound would change from run to run."""
    return str(uuid.UUID(int=next(_IDS)))


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


def test_the_largest_book_without_metadata_and_chapters_weighs_less_than_book_row_bytes() -> None:
    now = datetime.now(UTC)
    book = BookSummary.model_validate({
        "id": new_id(), "title": "\x01" * MAX_TITLE, "metadata": {}, "owner_id": new_id(), "version": 2**31 - 1,
        "created_at": now, "updated_at": now, "chapters": [], "chapter_count": 10_000,
    })
    assert json_text_bytes(book.model_dump(mode="json")) <= BOOK_ROW_BYTES
    assert MAX_LIMIT * (BOOK_ROW_BYTES + json_text_bytes({})) <= PAGE_BYTES
