"""Request, query and answer models of the Schemas, Buckets and Blobs routes.

Requests forbid unknown fields and use strict types (a wrong type is a 400);
value rules (a schema name, a semantic version, a non-blank bucket name) are
documented here and enforced by the domain (422). ``schema`` is a field name
pydantic reserves, so it is declared through an alias.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from adapters.http.models import DEPTH_NOTE, MAX_POSITION, Answer, ListQuery, ReadQuery, Request
from domain.limits import MAX_BUCKETS_PER_BLOB, MAX_INT64, MIB, Limits
from projections.documents import BlobOut, BucketOut, HistoryItem, SchemaOut

_LIMITS = Limits()  # the defaults; the INKSTREAM_MAX_* settings may lower them

SCHEMA_NAME = {"minLength": 1, "maxLength": 64, "pattern": "^[a-z0-9][a-z0-9_-]*$"}
SEMVER = {
    "minLength": 5,
    "maxLength": 128,
    "pattern": r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
               r"(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?"
               r"(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$",
    "description": f"A semantic version: MAJOR.MINOR.PATCH[-pre][+build], each of MAJOR, MINOR and PATCH at most "
                   f"{MAX_INT64} (else 422).",
}


# -- queries -----------------------------------------------------------------------


class BlobReadQuery(ReadQuery):
    as_of: int | None = Field(default=None, ge=1, le=MAX_POSITION,
                              description="A log position: the blob as it was then, rebuilt from the log.")


HISTORY_PAGE_BYTES = 2 * MIB
"""The most event data (the events' JSON payloads) one page of a blob's history holds: a page
ends early, with a ``next_cursor``, when the next event would take it past this; a single
event always fits. 2 MiB, as a list page (``PAGE_BYTES``) and for the same reason: a page's
cost to the event loop and memory grows with its bytes."""


class HistoryQuery(ReadQuery):
    """Paging of a blob's history. It is read from the log, which is never behind: the
    ``min_position`` and ``consistency`` every query accepts (the SDK sends them along) are
    checked like everywhere else (a wrong value is a 400), and then ignored: there is nothing
    to wait for."""

    min_position: int | None = Field(default=None, ge=0, le=MAX_POSITION,
                                     description="Accepted as by every query (0 or more, else 400) and ignored: "
                                                 "the history is read from the log, which is never behind.")
    consistency: Literal["eventual", "strong"] | None = Field(
        default=None, description="Accepted as by every query (else 400) and ignored: the history is read "
                                  "from the log, which is never behind.")
    limit: int = Field(default=50, ge=1, le=500, description="Events per page (1-500, else 400).")
    cursor: str | None = Field(default=None, description="The previous page's `next_cursor` (anything else: 400).")


class SchemaListQuery(ListQuery):
    name: str = Field(description="The schema name whose versions to list (newest first).")


class BucketListQuery(ListQuery):
    parent_id: str | None = Field(default=None, description="List this bucket's children; without it, your roots.")


class BlobListQuery(ListQuery):
    bucket_id: str | None = Field(default=None, description="Only blobs filed in this bucket (yours).")
    schema_id: str | None = Field(default=None, description="Only blobs of this schema (`name@version`, or a bare name for its latest).")


# -- shared answers ------------------------------------------------------------------


class FieldErrorOut(Answer):
    path: str
    message: str


class DeletedMixin(BaseModel):
    deleted: bool = Field(default=True, description="Always true: the resource as it was when deleted.")


# -- schemas ---------------------------------------------------------------------------


class MigrationIn(Request):
    from_version: str = Field(json_schema_extra=SEMVER)
    transform: str = Field(description="JavaScript source defining `function migrate(data)`.")


class SchemaIn(Request):
    name: str = Field(json_schema_extra=SCHEMA_NAME)
    version: str = Field(json_schema_extra=SEMVER)
    document: dict[str, Any] = Field(alias="schema", description="A JSON Schema (drafts 4 to 2020-12). With the "
                                     f"migration, at most {_LIMITS.schema_bytes} bytes as JSON "
                                     "(`INKSTREAM_MAX_SCHEMA_BYTES`), else 422. " + DEPTH_NOTE)
    migration: MigrationIn | None = None
    user_id: str | None = None


class SchemaCreated(SchemaOut):
    position: int


class SchemaPage(Answer):
    items: list[SchemaOut]
    next_cursor: str | None = None


class ValidateIn(Request):
    data: Any = Field(description="Any JSON value. " + DEPTH_NOTE)
    user_id: str | None = None


class ValidateOut(Answer):
    valid: bool
    errors: list[FieldErrorOut]


# -- buckets ----------------------------------------------------------------------------


class BucketIn(Request):
    name: str = Field(json_schema_extra={"minLength": 1, "maxLength": 200, "pattern": r"\S"})
    type: str = Field(json_schema_extra={"minLength": 1, "maxLength": 64, "pattern": r"\S"})
    parent_id: str | None = None
    user_id: str | None = None


class BucketPatch(Request):
    name: str | None = Field(default=None, json_schema_extra={"minLength": 1, "maxLength": 200, "pattern": r"\S"},
                             description="A new name; absent or null keeps the current one.")
    parent_id: str | None = Field(default=None,
                                  description="A new parent; null moves the bucket to the root; absent keeps it.")
    user_id: str | None = None


class BucketChanged(BucketOut):
    position: int


class BucketDeleted(BucketChanged, DeletedMixin):
    pass


class BucketPage(Answer):
    items: list[BucketOut]
    next_cursor: str | None = None


# -- blobs --------------------------------------------------------------------------------


_BLOB_DATA = (f"At most {_LIMITS.blob_bytes} bytes as JSON (`INKSTREAM_MAX_BLOB_BYTES`), else 422. " + DEPTH_NOTE)


class BlobIn(Request):
    data: Any = Field(description="Any JSON value; validated against `schema_id` when given. " + _BLOB_DATA)
    schema_id: str | None = Field(default=None, description="`name@version`, or a bare name for its latest version.")
    processor_id: str | None = None
    bucket_ids: list[str] | None = Field(default=None, fail_fast=True, json_schema_extra={"maxItems": MAX_BUCKETS_PER_BLOB},
                                         description=f"At most {MAX_BUCKETS_PER_BLOB} of your buckets, each once.")
    user_id: str | None = None


class BlobPut(Request):
    data: Any = Field(description="The new data, validated against the blob's schema. " + _BLOB_DATA)
    user_id: str | None = None


class BlobMoveIn(Request):
    from_bucket_id: str
    to_bucket_id: str
    user_id: str | None = None


class BlobMigrateIn(Request):
    schema_id: str
    user_id: str | None = None


class BlobChanged(BlobOut):
    position: int


class BlobDeleted(BlobChanged, DeletedMixin):
    pass


class BlobPage(Answer):
    items: list[BlobOut]
    next_cursor: str | None = None


class HistoryOut(Answer):
    items: list[HistoryItem]
    next_cursor: str | None = Field(default=None, description="The next page's `cursor`; null on the last page.")
