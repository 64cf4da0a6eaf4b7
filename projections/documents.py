"""The read model's documents: the one shape of every resource the API answers with.

Each document is declared once here and used three ways: a query builds it
from a read-model row (its columns carry the fields' names, so validating the
row is the whole mapping), a command answer builds it from the aggregate the
command saved (``from_aggregate``), and the OpenAPI document and the Python
SDK use the same class. Timestamps are ``datetime``s; they serialise as RFC
3339 UTC (``...Z``).
"""

from __future__ import annotations

from collections.abc import AsyncIterable
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from domain.blob import Blob
from domain.book import Book
from domain.bucket import Bucket
from domain.job import ERROR_CODES, STATUSES, Job
from domain.migration import STATUSES as MIGRATION_STATUSES
from domain.processor import Processor
from domain.recorded import Recorded
from domain.schema import Schema, schema_id
from projections.changes import row_after_pages
from projections.migrations import MigrationProjection


class Document(BaseModel):
    """Unknown fields are ignored: a row's bookkeeping columns never leak into an answer,
    and an older SDK keeps working when answers grow a field."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)


class UserOut(Document):
    user_id: str
    email: str
    username: str
    created_at: datetime


class SchemaOut(Document):
    id: str = Field(description="`name@version`.")
    name: str
    version: str
    document: dict[str, Any] = Field(alias="schema", description="The JSON Schema.")
    migration: dict[str, Any] | None = Field(
        default=None, description="`{from_version, transform}` when this version migrates from an earlier one."
    )
    owner_id: str
    created_at: datetime

    @classmethod
    def from_aggregate(cls, schema: Schema, version: str) -> SchemaOut:
        entry = schema.versions[version]
        return cls(
            id=schema_id(schema.name, entry.version),
            name=schema.name,
            version=entry.version,
            document=entry.schema,
            migration=entry.migration,
            owner_id=schema.owner_id,
            created_at=entry.created_at or schema.modified_on,
        )


class BucketOut(Document):
    id: str
    name: str
    type: str
    parent_id: str | None
    owner_id: str
    created_at: datetime
    updated_at: datetime
    version: int

    @classmethod
    def from_aggregate(cls, bucket: Bucket) -> BucketOut:
        return cls(
            id=bucket.id_str,
            name=bucket.name,
            type=bucket.type,
            parent_id=bucket.parent_id,
            owner_id=bucket.owner_id,
            created_at=bucket.created_on,
            updated_at=bucket.modified_on,
            version=bucket.version,
        )


class BlobOut(Document):
    id: str
    owner_id: str
    schema_id: str | None
    processor_id: str | None
    data: Any = Field(description="Any JSON value.")
    bucket_ids: list[str]
    version: int
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_aggregate(cls, blob: Blob) -> BlobOut:
        return cls(
            id=blob.id_str,
            owner_id=blob.owner_id,
            schema_id=blob.schema_id,
            processor_id=blob.processor_id,
            data=blob.data,
            bucket_ids=list(blob.bucket_ids),
            version=blob.version,
            created_at=blob.created_on,
            updated_at=blob.modified_on,
        )


class HistoryItem(Document):
    position: int
    type: str
    version: int
    actor: str | None
    at: datetime
    data: dict[str, Any]

    @classmethod
    def from_record(cls, record: Recorded) -> HistoryItem:
        return cls(position=record.position, type=record.type, version=record.version, actor=record.actor,
                   at=record.at, data=record.data)


class ChapterSummary(Document):
    id: str
    title: str
    order: int = Field(description="1-based place in the book.")


class ChapterOut(ChapterSummary):
    content: str


class _BookFields(Document):
    id: str
    title: str
    metadata: dict[str, Any]
    owner_id: str
    version: int
    created_at: datetime
    updated_at: datetime


class BookOut(_BookFields):
    chapters: list[ChapterOut] = Field(description="In order.")

    @classmethod
    def from_aggregate(cls, book: Book) -> BookOut:
        return cls(
            id=book.id_str,
            title=book.title,
            metadata=book.metadata,
            chapters=[ChapterOut(id=c.id, title=c.title, content=c.content, order=n)
                      for n, c in enumerate(book.chapters, 1)],
            owner_id=book.owner_id,
            version=book.version,
            created_at=book.created_on,
            updated_at=book.modified_on,
        )


class BookSummary(_BookFields):
    chapters: list[ChapterSummary] = Field(description="In order, without their contents.")
    chapter_count: int


class TriggerOut(Document):
    on: str = Field(description="`blob.created` or `blob.updated`.")
    bucket_id: str | None = None
    schema_id: str | None = None


class LimitsOut(Document):
    timeout_seconds: int
    max_attempts: int
    max_memory_mb: int


class ProcessorOut(Document):
    id: str
    name: str
    type: str
    input_schema: str | None
    output_schema: str | None
    config: dict[str, Any]
    triggers: list[TriggerOut]
    limits: LimitsOut
    owner_id: str
    version: int
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_aggregate(cls, processor: Processor) -> ProcessorOut:
        return cls(
            id=processor.id_str,
            name=processor.name,
            type=processor.type,
            input_schema=processor.input_schema,
            output_schema=processor.output_schema,
            config=processor.config,
            triggers=[TriggerOut.model_validate(t) for t in processor.triggers],
            limits=LimitsOut.model_validate(processor.limits),
            owner_id=processor.owner_id,
            version=processor.version,
            created_at=processor.created_on,
            updated_at=processor.modified_on,
        )


class JobError(Document):
    code: str = Field(json_schema_extra={"enum": list(ERROR_CODES)})
    message: str


class JobTrigger(Document):
    on: str
    blob_id: str
    position: int


class JobOut(Document):
    id: str
    status: str = Field(json_schema_extra={"enum": list(STATUSES)})
    processor_id: str
    processor_version: int = Field(description="The processor's version the job runs with.")
    processor_type: str
    input_blob_id: str
    output_blob_id: str | None = None
    error: JobError | None = Field(default=None, description="Why a `failed` job failed.")
    last_error: JobError | None = Field(default=None, description="Why the last attempt failed, while a retry is "
                                                                  "pending.")
    attempts: int
    trigger: JobTrigger | None = Field(default=None, description="The blob event that requested the job.")
    depth: int = Field(description="0 for a job you requested; n for the n-th job of a chain of triggers.")
    owner_id: str
    version: int
    created_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    updated_at: datetime
    position: int = Field(description="The log position of the job's last change: pass it as `min_position` to "
                                      "read what that change made (a completed job's output blob) at once.")

    @classmethod
    def from_aggregate(cls, job: Job, position: int) -> JobOut:
        """The job as a command saved it at ``position``: what the jobs projection makes of its history
        up to there (a property test holds the two equal), without reading that history, which its
        owner can make long (a job cancelled and retried over and over)."""
        return cls(
            id=job.id_str, status=job.status, processor_id=job.processor_id,
            processor_version=job.processor_version, processor_type=job.processor_type,
            input_blob_id=job.input_blob_id, output_blob_id=job.output_blob_id,
            error=job.error, last_error=job.last_error, attempts=job.attempts, trigger=job.trigger,
            depth=job.depth, owner_id=job.owner_id, version=job.version, created_at=job.created_on,
            started_at=job.started_at, finished_at=job.finished_at, updated_at=job.modified_on,
            position=position,
        )  # fmt: skip


class MigrationError(Document):
    blob_id: str
    path: str = Field(description="JSON Pointer of what failed: a field the result breaks, or \"\" for the "
                                  "transform itself.")
    message: str


class MigrationOut(Document):
    id: str
    status: str = Field(json_schema_extra={"enum": list(MIGRATION_STATUSES)},
                        description="pending → running → completed | failed; a completed real run may be "
                                    "reverted: reverting → reverted.")
    dry_run: bool = Field(description="A dry run transforms and validates every blob and writes nothing.")
    schema_id: str = Field(description="The target version, `name@version`.")
    from_schema_id: str = Field(description="The source version, `name@from_version`.")
    bucket_id: str | None = Field(default=None, description="Only blobs in this bucket and its sub-buckets.")
    total: int = Field(description="Blobs on the source version when the run started.")
    migrated: int = Field(description="Blobs moved to the target (in a dry run: that would be).")
    failed: int = Field(description="Blobs whose transform failed or whose result the target refuses; left as "
                                    "they were.")
    skipped: int = Field(description="Blobs changed by someone else while the run went on (and again when retried "
                                     "at the end); left as they are.")
    errors: list[MigrationError] = Field(description="The first 100 errors.")
    error: str | None = Field(default=None, description="Why a `failed` run stopped.")
    reverted: int = Field(default=0, description="Blobs the revert put back.")
    revert_skipped: int = Field(default=0, description="Blobs the revert left alone: changed since the run, or "
                                                       "deleted.")
    revert_skipped_blob_ids: list[str] = Field(default_factory=list, description="The first 100 of them.")
    owner_id: str
    version: int
    created_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    reverted_at: datetime | None = None
    updated_at: datetime
    position: int = Field(description="The log position of the run's last change.")

    @classmethod
    async def from_pages(cls, pages: AsyncIterable[list[Recorded]]) -> MigrationOut:
        """The run as the migrations projection holds it after its history up to a command, folded a
        batch at a time (a run over many blobs records a progress event, with the blobs it changed, per
        batch of blobs: a revert's answer follows all of them)."""
        row = await row_after_pages(MigrationProjection(), pages)
        if row is None:
            raise ValueError("no migration in these records")
        return cls.model_validate(row)
