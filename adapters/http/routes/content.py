"""Schemas, buckets and blobs routes.

Command answers are built from the aggregate the command saved (the read model
may lag behind it), in the same shape the matching GET answers from the read
model. Queries go through ``read_model`` (read-your-writes); the two answers
that come from the log itself (a blob's history and ``as_of``) read the log,
which is never behind.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from adapters.http.api import (
    Api,
    actor,
    command_answer,
    context,
    if_match,
    json_response,
    read_body,
    read_query,
    resource_answer,
)
from adapters.http.keys import container
from adapters.http.models_content import (
    BlobChanged,
    BlobDeleted,
    BlobIn,
    BlobListQuery,
    BlobMigrateIn,
    BlobMoveIn,
    BlobOut,
    BlobPage,
    BlobPut,
    BlobReadQuery,
    BucketChanged,
    BucketDeleted,
    BucketIn,
    BucketListQuery,
    BucketOut,
    BucketPage,
    BucketPatch,
    HistoryOut,
    ReadQuery,
    SchemaCreated,
    SchemaIn,
    SchemaListQuery,
    SchemaOut,
    SchemaPage,
    ValidateIn,
    ValidateOut,
)
from adapters.http.reads import read_model
from adapters.postgres.queries import content as queries
from commands.authorization import ensure_owner
from commands.buckets import KEEP
from domain.base import utc
from domain.blob import Blob
from domain.bucket import Bucket
from domain.errors import NotFound
from domain.ids import is_id
from domain.schema import NAME_RE, Schema, parse_schema_id, schema_id

SCHEMAS, BUCKETS, BLOBS = "schemas", "buckets", "blobs"

_EMPTY_PAGE: dict[str, Any] = {"items": [], "next_cursor": None}


# -- answers from aggregates -------------------------------------------------------------


def schema_payload(schema: Schema, version: str) -> dict[str, Any]:
    entry = schema.versions[version]
    return {
        "id": schema_id(schema.name, entry.version),
        "name": schema.name,
        "version": entry.version,
        "schema": entry.schema,
        "migration": entry.migration,
        "owner_id": schema.owner_id,
        "created_at": utc(entry.created_at or schema.modified_on),
    }


def bucket_payload(bucket: Bucket) -> dict[str, Any]:
    return {
        "id": bucket.id_str,
        "name": bucket.name,
        "type": bucket.type,
        "parent_id": bucket.parent_id,
        "owner_id": bucket.owner_id,
        "created_at": utc(bucket.created_on),
        "updated_at": utc(bucket.modified_on),
        "version": bucket.version,
    }


def blob_payload(blob: Blob) -> dict[str, Any]:
    return {
        "id": blob.id_str,
        "owner_id": blob.owner_id,
        "schema_id": blob.schema_id,
        "processor_id": blob.processor_id,
        "data": blob.data,
        "bucket_ids": list(blob.bucket_ids),
        "version": blob.version,
        "created_at": utc(blob.created_on),
        "updated_at": utc(blob.modified_on),
    }


def _deleted(payload: dict[str, Any]) -> dict[str, Any]:
    return {**payload, "deleted": True}


# -- schemas -------------------------------------------------------------------------------


async def create_schema(request: web.Request) -> web.Response:
    c = container(request)
    body = await read_body(request, SchemaIn)
    migration = body.migration.model_dump() if body.migration is not None else None
    with c.tracing.span("command Schema.register"):
        saved = await c.ctx.schemas.register(context(request), body.name, body.version, body.document, migration)
    return command_answer(schema_payload(saved.aggregate, body.version), saved.position, status=201)


async def get_schema(request: web.Request) -> web.Response:
    actor(request)
    read_query(request, ReadQuery)  # validates min_position/consistency
    pool = await read_model(request, [SCHEMAS])
    found = await queries.get_schema(pool, request.match_info["id"])
    if found is None:
        raise NotFound(f"schema {request.match_info['id']}")
    return resource_answer(found)


async def list_schemas(request: web.Request) -> web.Response:
    actor(request)
    query = read_query(request, SchemaListQuery)
    pool = await read_model(request, [SCHEMAS])
    if not NAME_RE.match(query.name):
        return json_response(_EMPTY_PAGE)
    return json_response(await queries.list_schema_versions(pool, query.name, query.limit, query.cursor))


async def validate_against_schema(request: web.Request) -> web.Response:
    c = container(request)
    body = await read_body(request, ValidateIn)
    errors = await c.ctx.schemas.validate(context(request), request.match_info["id"], body.data)
    return json_response({"valid": not errors, "errors": [e.as_dict() for e in errors]})


# -- buckets ------------------------------------------------------------------------------


async def _own_bucket_row(pool: Any, user: str, bucket_id: str) -> dict[str, Any]:
    """A bucket row of the acting user: unknown → 404, someone else's → 403."""
    row = await queries.get_bucket(pool, bucket_id) if is_id(bucket_id) else None
    if row is None:
        raise NotFound(f"bucket {bucket_id}")
    ensure_owner(user, row["owner_id"], "bucket")
    return row


async def create_bucket(request: web.Request) -> web.Response:
    c = container(request)
    body = await read_body(request, BucketIn)
    with c.tracing.span("command Bucket.create"):
        saved = await c.ctx.buckets.create(context(request), body.name, body.type, body.parent_id)
    return command_answer(bucket_payload(saved.aggregate), saved.position, status=201, version=saved.aggregate.version)


async def get_bucket(request: web.Request) -> web.Response:
    user = actor(request)
    read_query(request, ReadQuery)  # validates min_position/consistency
    pool = await read_model(request, [BUCKETS])
    row = await _own_bucket_row(pool, user, request.match_info["id"])
    return resource_answer(row, row["version"])


async def list_buckets(request: web.Request) -> web.Response:
    user = actor(request)
    query = read_query(request, BucketListQuery)
    pool = await read_model(request, [BUCKETS])
    if query.parent_id is not None:
        await _own_bucket_row(pool, user, query.parent_id)
    return json_response(await queries.list_buckets(pool, user, query.parent_id, query.limit, query.cursor))


async def update_bucket(request: web.Request) -> web.Response:
    c = container(request)
    body = await read_body(request, BucketPatch)
    parent_id = body.parent_id if "parent_id" in body.model_fields_set else KEEP
    with c.tracing.span("command Bucket.update"):
        saved = await c.ctx.buckets.update(
            context(request), request.match_info["id"], body.name, parent_id, if_match(request)
        )
    return command_answer(bucket_payload(saved.aggregate), saved.position, version=saved.aggregate.version)


async def delete_bucket(request: web.Request) -> web.Response:
    c = container(request)
    with c.tracing.span("command Bucket.delete"):
        saved = await c.ctx.buckets.delete(context(request), request.match_info["id"], if_match(request))
    return command_answer(_deleted(bucket_payload(saved.aggregate)), saved.position, version=saved.aggregate.version)


# -- blobs ----------------------------------------------------------------------------------


async def create_blob(request: web.Request) -> web.Response:
    c = container(request)
    body = await read_body(request, BlobIn)
    with c.tracing.span("command Blob.create"):
        saved = await c.ctx.blobs.create(
            context(request), body.data, body.schema_id, body.processor_id, body.bucket_ids
        )
    return command_answer(blob_payload(saved.aggregate), saved.position, status=201, version=saved.aggregate.version)


async def _blob_as_of(request: web.Request, blob_id: str, position: int) -> web.Response:
    saved = await container(request).repo.get(Blob, blob_id, until_position=position)
    if saved is None:
        raise NotFound(f"blob {blob_id} at position {position}")
    ensure_owner(actor(request), saved.aggregate.owner_id, "blob")
    if saved.aggregate.deleted:
        raise NotFound(f"blob {blob_id} at position {position}: it was deleted")
    return resource_answer(blob_payload(saved.aggregate), saved.aggregate.version)


async def get_blob(request: web.Request) -> web.Response:
    user = actor(request)
    query = read_query(request, BlobReadQuery)
    blob_id = request.match_info["id"]
    if not is_id(blob_id):
        raise NotFound(f"blob {blob_id}")
    if query.as_of is not None:
        return await _blob_as_of(request, blob_id, query.as_of)
    pool = await read_model(request, [BLOBS])
    row = await queries.get_blob(pool, blob_id)
    if row is None:
        raise NotFound(f"blob {blob_id}")
    ensure_owner(user, row["owner_id"], "blob")
    return resource_answer(row, row["version"])


async def list_blobs(request: web.Request) -> web.Response:
    user = actor(request)
    query = read_query(request, BlobListQuery)
    pool = await read_model(request, [BLOBS, BUCKETS, SCHEMAS])
    if query.bucket_id is not None:
        await _own_bucket_row(pool, user, query.bucket_id)
    if query.schema_id is not None:
        try:
            parse_schema_id(query.schema_id)
        except ValueError:
            return json_response(_EMPTY_PAGE)
    page = await queries.list_blobs(pool, user, query.bucket_id, query.schema_id, query.limit, query.cursor)
    return json_response(page)


async def update_blob(request: web.Request) -> web.Response:
    c = container(request)
    body = await read_body(request, BlobPut)
    with c.tracing.span("command Blob.update"):
        saved = await c.ctx.blobs.update(context(request), request.match_info["id"], body.data, if_match(request))
    return command_answer(blob_payload(saved.aggregate), saved.position, version=saved.aggregate.version)


async def move_blob(request: web.Request) -> web.Response:
    c = container(request)
    body = await read_body(request, BlobMoveIn)
    with c.tracing.span("command Blob.move"):
        saved = await c.ctx.blobs.move(
            context(request), request.match_info["id"], body.from_bucket_id, body.to_bucket_id, if_match(request)
        )
    return command_answer(blob_payload(saved.aggregate), saved.position, version=saved.aggregate.version)


async def migrate_blob(request: web.Request) -> web.Response:
    c = container(request)
    body = await read_body(request, BlobMigrateIn)
    with c.tracing.span("command Blob.migrate"):
        saved = await c.ctx.blobs.migrate(context(request), request.match_info["id"], body.schema_id, if_match(request))
    return command_answer(blob_payload(saved.aggregate), saved.position, version=saved.aggregate.version)


async def delete_blob(request: web.Request) -> web.Response:
    c = container(request)
    with c.tracing.span("command Blob.delete"):
        saved = await c.ctx.blobs.delete(context(request), request.match_info["id"], if_match(request))
    return command_answer(_deleted(blob_payload(saved.aggregate)), saved.position, version=saved.aggregate.version)


async def blob_history(request: web.Request) -> web.Response:
    user = actor(request)
    blob_id = request.match_info["id"]
    if not is_id(blob_id):
        raise NotFound(f"blob {blob_id}")
    records = await container(request).repo.history(Blob.TYPE, blob_id)
    if not records:
        raise NotFound(f"blob {blob_id}")
    ensure_owner(user, records[0].data.get("owner_id"), "blob")
    items = [
        {"position": r.position, "type": r.type, "version": r.version, "actor": r.actor, "at": utc(r.at), "data": r.data}
        for r in records
    ]
    return json_response({"items": items})


# -- declarations ---------------------------------------------------------------------------------

_SCHEMA_READS = "Schemas are shared type definitions: every authenticated user may read and validate against them."
_SCHEMA_OWNER = (
    "A schema name belongs to the user who registered it first; only they add versions (403 otherwise). "
    "Every other user may read and validate against every version."
)
_OWNER_ONLY = "Only the owner may read or change it (403 for someone else's, 404 when unknown)."
_IF_MATCH = " `If-Match` with the ETag (the version) makes a stale write fail with 412."
_PAGING = " Paged with `limit` (1-500, default 50) and the previous page's `next_cursor`."
_PATTERNS = (
    " Patterns (`pattern`, `patternProperties`, `propertyNames`) must match in linear time: look-around and "
    "back-references are refused (422, the error at the pattern's path)."
)
_ERROR_LIST = " (beyond 1,000 errors, the first 1,000 by path, after a root note giving the total)."
_UNJUDGED = (
    " 422 when the data cannot be judged: the schema cannot be used (a pattern refused since it was registered) "
    "or validation took longer than its time budget."
)


def register_routes(api: Api) -> None:
    op = api.operation
    # schemas
    op("POST", "/v1/schemas", summary="Register a schema version", tag="schemas", body=SchemaIn,
       response=SchemaCreated, status=201, errors=(403, 404, 409, 422),
       description=_SCHEMA_OWNER + _PATTERNS)(create_schema)
    op("GET", "/v1/schemas", summary="The versions of a schema name, newest first", tag="schemas",
       query=SchemaListQuery, response=SchemaPage, errors=(400,),
       description=_SCHEMA_READS + " `name` is required." + _PAGING)(list_schemas)
    op("GET", "/v1/schemas/{id}", summary="A schema version (`name@version`, or a bare name: its latest)",
       tag="schemas", query=ReadQuery, response=SchemaOut, errors=(400, 404), description=_SCHEMA_READS)(get_schema)
    op("POST", "/v1/schemas/{id}/validate", summary="Validate data against a schema version", tag="schemas",
       body=ValidateIn, response=ValidateOut, errors=(403, 404, 422),
       description=_SCHEMA_READS + " Every error is reported, sorted by path" + _ERROR_LIST + _UNJUDGED)(validate_against_schema)
    # buckets
    op("POST", "/v1/buckets", summary="Create a bucket", tag="buckets", body=BucketIn, response=BucketChanged,
       status=201, errors=(403, 404, 409, 422),
       description="`parent_id` must be one of your buckets (404 unknown, 403 someone else's).")(create_bucket)
    op("GET", "/v1/buckets", summary="A bucket's children, or your root buckets", tag="buckets",
       query=BucketListQuery, response=BucketPage, errors=(400, 403, 404),
       description="Oldest first." + _PAGING)(list_buckets)
    op("GET", "/v1/buckets/{id}", summary="A bucket", tag="buckets", query=ReadQuery, response=BucketOut,
       errors=(400, 403, 404), description=_OWNER_ONLY)(get_bucket)
    op("PATCH", "/v1/buckets/{id}", summary="Rename and/or move a bucket", tag="buckets", body=BucketPatch,
       response=BucketChanged, errors=(403, 404, 409, 412, 422),
       description=_OWNER_ONLY + " A move under the bucket itself or one of its descendants is refused (422)."
       + _IF_MATCH)(update_bucket)
    op("DELETE", "/v1/buckets/{id}", summary="Delete an empty bucket", tag="buckets", response=BucketDeleted,
       errors=(403, 404, 409, 412),
       description=_OWNER_ONLY + " Refused (409) while it holds blobs or child buckets." + _IF_MATCH)(delete_bucket)
    # blobs
    op("POST", "/v1/blobs", summary="Create a blob", tag="blobs", body=BlobIn, response=BlobChanged, status=201,
       errors=(403, 404, 409, 422),
       description="The data is validated against `schema_id` (422 with every error); every bucket must be "
                   "yours (404 unknown, 403 someone else's). Nothing is recorded when anything fails.")(create_blob)
    op("GET", "/v1/blobs", summary="Your blobs, oldest first", tag="blobs", query=BlobListQuery,
       response=BlobPage, errors=(400, 403, 404),
       description="Optionally only those in one of your buckets and/or of one schema." + _PAGING)(list_blobs)
    op("GET", "/v1/blobs/{id}", summary="A blob (or, with `as_of`, the blob as it was at that log position)",
       tag="blobs", query=BlobReadQuery, response=BlobOut, errors=(400, 403, 404),
       description=_OWNER_ONLY + " `as_of` rebuilds it from the log (404 if it did not exist then).")(get_blob)
    op("PUT", "/v1/blobs/{id}", summary="Replace a blob's data", tag="blobs", body=BlobPut,
       response=BlobChanged, errors=(403, 404, 409, 412, 422),
       description=_OWNER_ONLY + " Validated against the blob's schema." + _IF_MATCH)(update_blob)
    op("DELETE", "/v1/blobs/{id}", summary="Delete a blob", tag="blobs", response=BlobDeleted,
       errors=(403, 404, 409, 412), description=_OWNER_ONLY + _IF_MATCH)(delete_blob)
    op("POST", "/v1/blobs/{id}/move", summary="Move a blob from one bucket to another", tag="blobs",
       body=BlobMoveIn, response=BlobChanged, errors=(403, 404, 409, 412, 422),
       description=_OWNER_ONLY + " Both buckets must be yours." + _IF_MATCH)(move_blob)
    op("POST", "/v1/blobs/{id}/migrate", summary="Migrate a blob to another version of its schema", tag="blobs",
       body=BlobMigrateIn, response=BlobChanged, errors=(403, 404, 409, 412, 422),
       description=_OWNER_ONLY + " Runs the registered transforms in order; 422 when there is no migration "
                   "path or the result does not satisfy the target schema." + _IF_MATCH)(migrate_blob)
    op("GET", "/v1/blobs/{id}/history", summary="A blob's events, from the log", tag="blobs",
       response=HistoryOut, errors=(403, 404), description=_OWNER_ONLY)(blob_history)
