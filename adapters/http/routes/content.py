"""Schemas, buckets and blobs routes: thin translators between HTTP and commands or queries.

Command answers are built from the aggregate the command saved (the read model
may lag behind it), as the same document the matching GET answers from the
read model. Queries wait for read-your-writes (``ReadYourWrites``); the two
answers that come from the log itself (a blob's history and ``as_of``) read
the log, which is never behind.
"""

from __future__ import annotations

from aiohttp import web

from adapters.cursors import encode_cursor, position_cursor
from adapters.http.api import (
    Api,
    actor,
    command_answer,
    context,
    if_match,
    json_response,
    page_answer,
    read_body,
    read_query,
    resource_answer,
)
from adapters.http.keys import BUS, READS, REPOSITORY
from adapters.http.models import ReadQuery
from adapters.http.models_content import (
    HISTORY_PAGE_BYTES,
    BlobChanged,
    BlobDeleted,
    BlobIn,
    BlobListQuery,
    BlobMigrateIn,
    BlobMoveIn,
    BlobPage,
    BlobPut,
    BlobReadQuery,
    BucketChanged,
    BucketDeleted,
    BucketIn,
    BucketListQuery,
    BucketPage,
    BucketPatch,
    HistoryOut,
    HistoryQuery,
    SchemaCreated,
    SchemaIn,
    SchemaListQuery,
    SchemaPage,
    ValidateIn,
    ValidateOut,
)
from adapters.http.page_turns import BYTE_PAGING, page_turn, process_step, user_turn
from commands.authorization import ensure_owner
from commands.blobs import CreateBlob, DeleteBlob, MigrateBlob, MoveBlob, UpdateBlob
from commands.buckets import KEEP, CreateBucket, DeleteBucket, UpdateBucket
from commands.repository import Saved
from commands.schemas import RegisterSchema, ValidateData
from domain.blob import Blob
from domain.errors import NotFound
from domain.ids import is_id
from domain.schema import NAME_RE, parse_schema_id
from projections.documents import BlobOut, BucketOut, HistoryItem, SchemaOut
from projections.read_model import ReadModel

SCHEMAS, BUCKETS, BLOBS = "schemas", "buckets", "blobs"


async def _read(request: web.Request, query: ReadQuery, *projections: str) -> ReadModel:
    return await request.app[READS].read(projections, query.min_position, query.consistency)


# -- schemas -------------------------------------------------------------------------------


async def create_schema(request: web.Request) -> web.Response:
    body = await read_body(request, SchemaIn)
    migration = body.migration.model_dump() if body.migration is not None else None
    command = RegisterSchema(body.name, body.version, body.document, migration)
    saved = await request.app[BUS].handle(command, context(request))
    return command_answer(SchemaOut.from_aggregate(saved.aggregate, body.version), saved.position, status=201)


async def get_schema(request: web.Request) -> web.Response:
    actor(request)
    model = await _read(request, read_query(request, ReadQuery), SCHEMAS)
    found = await model.schema(request.match_info["id"])
    if found is None:
        raise NotFound(f"schema {request.match_info['id']}")
    return resource_answer(found)


async def list_schemas(request: web.Request) -> web.Response:
    user = actor(request)
    query = read_query(request, SchemaListQuery)
    model = await _read(request, query, SCHEMAS)
    if not NAME_RE.match(query.name):
        return page_answer([], None)
    async with page_turn(request, user):
        page = await model.schema_versions(query.name, query.limit, query.cursor)
        return page_answer(page.items, page.next_cursor)


async def validate_against_schema(request: web.Request) -> web.Response:
    body = await read_body(request, ValidateIn)
    errors = await request.app[BUS].handle(ValidateData(request.match_info["id"], body.data), context(request))
    return json_response({"valid": not errors, "errors": [e.as_dict() for e in errors]})


# -- buckets ------------------------------------------------------------------------------


async def _own_bucket(model: ReadModel, user: str, bucket_id: str) -> BucketOut:
    """A bucket of the acting user: unknown → 404, someone else's → 403."""
    found = await model.bucket(bucket_id) if is_id(bucket_id) else None
    if found is None:
        raise NotFound(f"bucket {bucket_id}")
    ensure_owner(user, found.owner_id, "bucket")
    return found


async def create_bucket(request: web.Request) -> web.Response:
    body = await read_body(request, BucketIn)
    saved = await request.app[BUS].handle(CreateBucket(body.name, body.type, body.parent_id), context(request))
    bucket = saved.aggregate
    return command_answer(BucketOut.from_aggregate(bucket), saved.position, status=201, version=bucket.version)


async def get_bucket(request: web.Request) -> web.Response:
    user = actor(request)
    model = await _read(request, read_query(request, ReadQuery), BUCKETS)
    found = await _own_bucket(model, user, request.match_info["id"])
    return resource_answer(found, found.version)


async def list_buckets(request: web.Request) -> web.Response:
    user = actor(request)
    query = read_query(request, BucketListQuery)
    model = await _read(request, query, BUCKETS)
    if query.parent_id is not None:
        await _own_bucket(model, user, query.parent_id)
    page = await model.buckets(user, query.parent_id, query.limit, query.cursor)
    return page_answer(page.items, page.next_cursor)


async def update_bucket(request: web.Request) -> web.Response:
    body = await read_body(request, BucketPatch)
    parent_id = body.parent_id if "parent_id" in body.model_fields_set else KEEP
    command = UpdateBucket(request.match_info["id"], body.name, parent_id, if_match(request))
    saved = await request.app[BUS].handle(command, context(request))
    bucket = saved.aggregate
    return command_answer(BucketOut.from_aggregate(bucket), saved.position, version=bucket.version)


async def delete_bucket(request: web.Request) -> web.Response:
    command = DeleteBucket(request.match_info["id"], if_match(request))
    saved = await request.app[BUS].handle(command, context(request))
    bucket = saved.aggregate
    return command_answer(BucketOut.from_aggregate(bucket), saved.position, version=bucket.version, deleted=True)


# -- blobs ----------------------------------------------------------------------------------


def _blob_answer(saved: Saved[Blob], status: int = 200, **extra: object) -> web.Response:
    blob = saved.aggregate
    return command_answer(BlobOut.from_aggregate(blob), saved.position, status=status, version=blob.version, **extra)


async def create_blob(request: web.Request) -> web.Response:
    body = await read_body(request, BlobIn)
    command = CreateBlob(body.data, body.schema_id, body.processor_id, tuple(body.bucket_ids or ()))
    return _blob_answer(await request.app[BUS].handle(command, context(request)), status=201)


async def _blob_as_of(request: web.Request, blob_id: str, position: int) -> web.Response:
    # Read in one of the user's turns: it may fold a rung's span of events (tens of ms), and its cost
    # is charged only once it is answered, so a user's burst of them must not run at once.
    async with user_turn(request, actor(request)):
        saved = await request.app[REPOSITORY].get(Blob, blob_id, until_position=position)
    if saved is None:
        raise NotFound(f"blob {blob_id} at position {position}")
    ensure_owner(actor(request), saved.aggregate.owner_id, "blob")
    if saved.aggregate.deleted:
        raise NotFound(f"blob {blob_id} at position {position}: it was deleted")
    return resource_answer(BlobOut.from_aggregate(saved.aggregate), saved.aggregate.version)


async def get_blob(request: web.Request) -> web.Response:
    user = actor(request)
    query = read_query(request, BlobReadQuery)
    blob_id = request.match_info["id"]
    if not is_id(blob_id):
        raise NotFound(f"blob {blob_id}")
    if query.as_of is not None:
        return await _blob_as_of(request, blob_id, query.as_of)
    model = await _read(request, query, BLOBS)
    found = await model.blob(blob_id)
    if found is None:
        raise NotFound(f"blob {blob_id}")
    ensure_owner(user, found.owner_id, "blob")
    return resource_answer(found, found.version)


async def list_blobs(request: web.Request) -> web.Response:
    user = actor(request)
    query = read_query(request, BlobListQuery)
    model = await _read(request, query, BLOBS, BUCKETS, SCHEMAS)
    if query.bucket_id is not None:
        await _own_bucket(model, user, query.bucket_id)
    if query.schema_id is not None:
        try:
            parse_schema_id(query.schema_id)
        except ValueError:
            return page_answer([], None)
    async with page_turn(request, user):
        page = await model.blobs(user, query.bucket_id, query.schema_id, query.limit, query.cursor)
        return page_answer(page.items, page.next_cursor)


async def update_blob(request: web.Request) -> web.Response:
    body = await read_body(request, BlobPut)
    command = UpdateBlob(request.match_info["id"], body.data, if_match(request))
    return _blob_answer(await request.app[BUS].handle(command, context(request)))


async def move_blob(request: web.Request) -> web.Response:
    body = await read_body(request, BlobMoveIn)
    command = MoveBlob(request.match_info["id"], body.from_bucket_id, body.to_bucket_id, if_match(request))
    return _blob_answer(await request.app[BUS].handle(command, context(request)))


async def migrate_blob(request: web.Request) -> web.Response:
    """In one of its user's turns (``user_turn``): its transforms hold a sandbox worker for up to
    ``MIGRATE_SECONDS``, and one user's burst of them must take turns, not every worker at once."""
    body = await read_body(request, BlobMigrateIn)
    command = MigrateBlob(request.match_info["id"], body.schema_id, if_match(request))
    async with user_turn(request, actor(request)):
        saved = await request.app[BUS].handle(command, context(request))
    return _blob_answer(saved)


async def delete_blob(request: web.Request) -> web.Response:
    command = DeleteBlob(request.match_info["id"], if_match(request))
    return _blob_answer(await request.app[BUS].handle(command, context(request)), deleted=True)


async def blob_history(request: web.Request) -> web.Response:
    """A page of the blob's events, oldest first, read from the log: at most ``limit`` events and
    ``HISTORY_PAGE_BYTES`` of event data, then a cursor (the last event's position)."""
    user = actor(request)
    blob_id = request.match_info["id"]
    if not is_id(blob_id):
        raise NotFound(f"blob {blob_id}")
    query = read_query(request, HistoryQuery)
    after = position_cursor(query.cursor)
    repository = request.app[REPOSITORY]
    # the owner first, from the one event that created the blob, then the page: someone
    # else's blob costs one event read, never a page
    created = await repository.first_event(Blob.TYPE, blob_id)
    if created is None:
        raise NotFound(f"blob {blob_id}")
    ensure_owner(user, created.data.get("owner_id"), "blob")
    async with user_turn(request, user):  # the read waits on the log: a process step only to encode it
        records, more = await repository.history_page(Blob.TYPE, blob_id, after=after or 0, limit=query.limit,
                                                      max_bytes=HISTORY_PAGE_BYTES)
        async with process_step(request):
            next_cursor = encode_cursor([records[-1].position]) if more and records else None
            return page_answer([HistoryItem.from_record(r) for r in records], next_cursor)


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
       description=_SCHEMA_READS + " `name` is required." + _PAGING + BYTE_PAGING)(list_schemas)
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
       description="Optionally only those in one of your buckets and/or of one schema." + _PAGING
                   + BYTE_PAGING)(list_blobs)
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
                   "path, the result does not satisfy the target schema, or a transform runs past its share of "
                   "5 s (a chain of n steps: 5 s / n each, at most the sandbox's own limit), or the chain has more "
                   "than 100 steps (a migration run, `POST /v1/migrations`, runs long chains). A user's migrations take "
                   "turns with their other heavy requests (pages of big lists): two at a time, more wait, and "
                   "past 32 waiting a 429." + _IF_MATCH)(migrate_blob)
    op("GET", "/v1/blobs/{id}/history", summary="A blob's events, from the log, oldest first", tag="blobs",
       query=HistoryQuery, response=HistoryOut, errors=(400, 403, 404),
       description=_OWNER_ONLY + " Every event of the blob in log order, paged with `limit` (1-500, default 50) "
                   "and the previous page's `next_cursor` (null on the last page). A page also ends early, with "
                   f"a `next_cursor`, when its events' data would exceed {HISTORY_PAGE_BYTES} bytes (2 MiB); a "
                   "single event always fits. Read from the log, which is never behind: there is nothing to "
                   "wait for (`min_position` and `consistency` are checked as everywhere, then ignored). "
                   "Someone else's blob answers 403 after reading only its first event.")(blob_history)
