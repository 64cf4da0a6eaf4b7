"""``projections.read_model.ReadModel`` on MongoDB: the same answers as PostgreSQL's.

Documents are decoded (``adapters/mongo/encoding.py``) and validated into the
documents of ``projections.documents``, as rows are on PostgreSQL. Lists are
keyset-paged on the same sort keys, with the same cursors
(``adapters/cursors.py``): blobs, buckets and processors oldest first by
(created_at, id), jobs and migration runs newest first,
schema versions newest first by semver precedence, books by id. Tombstones
(see ``adapters/mongo/changes.py``) are never answered.

A page of blobs, schema versions, books, processors, jobs or migration runs is
also bounded in bytes (``PAGE_BYTES``), in two reads (in one snapshot where the
server offers one): the next ``limit + 1`` keys with their weights (``data_bytes``,
``schema_bytes``, a book's ``metadata_bytes`` and its chapters' ``summary_bytes``
(weighed in Python, not summed along an array path), ``config_bytes``, ``error_bytes`` + ``last_error_bytes``,
``errors_bytes`` + ``revert_skipped_bytes``) and
nothing else, then the documents of the prefix that fits, streamed in order
and cut again by their own weights (a document that grew in between ends the
page there: without a snapshot at most one batch more is read). A document
written before its weight was recorded weighs ``UNWEIGHED``, more than any
event can carry, until a replay (``inkstream replay --store mongo``) weighs it.

A book and its chapters are read in one aggregation (``$lookup`` by
``book_id``), within a snapshot session where the server offers one, so they
show one committed batch; the chapters are put in the book's order here, in
Python, not with an aggregation path through the ``chapter_ids`` array (some
Mongo-compatible servers evaluate paths through arrays wrongly).

An unreachable server is ``Unavailable`` (503), after the client's server
selection timeout.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager, nullcontext
from datetime import datetime
from typing import Any, ParamSpec, TypeVar

from pymongo import ASCENDING, DESCENDING
from pymongo.asynchronous.client_session import AsyncClientSession

from adapters.cursors import clamp_limit, encode_cursor, id_cursor, semver_cursor, time_cursor
from adapters.mongo.changes import LIVE
from adapters.mongo.client import OUTAGE_ERRORS, Mongo
from adapters.mongo.collections import CHECKPOINTS
from adapters.mongo.encoding import decode_document, timestamp
from commands.ports import Unavailable
from domain.schema import parse_schema_id
from projections.documents import (
    BlobOut, BookOut, BookSummary, BucketOut, ChapterOut, ChapterSummary, Document, JobOut, MigrationOut, ProcessorOut,
    SchemaOut,
    UserOut,
)
from projections.books import BOOK_ROW_BYTES
from projections.commands import NAME as COMMANDS
from projections.commands import TABLE as COMMAND_EVENTS
from projections.jobs import JOB_ROW_BYTES
from projections.migrations import MIGRATION_ROW_BYTES
from projections.read_model import PAGE_BYTES, Page

D = TypeVar("D", bound=Document)
P = ParamSpec("P")
R = TypeVar("R")

_LATEST = [("major", DESCENDING), ("minor", DESCENDING), ("patch", DESCENDING), ("pre", DESCENDING)]
_OLDEST = [("created_at", ASCENDING), ("_id", ASCENDING)]
_NEWEST = [("created_at", DESCENDING), ("_id", DESCENDING)]

UNWEIGHED = 1024 * 1024
"""The weight of a document without one: more than the data of any event (``MAX_EVENT_BYTES``)."""

Weight = Callable[[dict[str, Any]], int]
"""What a document (or its key: the fields a list projects) weighs on a page."""


def _weight(*fields: str, base: int = 0) -> Weight:
    """A document's weight: ``base`` and its stored ``fields`` (``UNWEIGHED`` each one it lacks)."""
    return lambda doc: base + sum(doc.get(f, UNWEIGHED) for f in fields)


_PROCESSOR_WEIGHT = _weight("config_bytes")
_JOB_WEIGHT = _weight("error_bytes", "last_error_bytes", base=JOB_ROW_BYTES)
_MIGRATION_WEIGHT = _weight("errors_bytes", "revert_skipped_bytes", base=MIGRATION_ROW_BYTES)


def _reachable(method: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
    @functools.wraps(method)
    async def call(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return await method(*args, **kwargs)
        except OUTAGE_ERRORS as exc:
            raise Unavailable("the read-model store is unreachable") from exc

    return call


def _after_time(cursor: str | None) -> dict[str, Any]:
    at, last_id = time_cursor(cursor)
    if at is None:
        return {}
    stamp = timestamp(at)
    return {"$or": [{"created_at": {"$gt": stamp}}, {"created_at": stamp, "_id": {"$gt": last_id}}]}


def _before_time(cursor: str | None) -> dict[str, Any]:
    """Rows after the cursor in a newest-first list."""
    at, last_id = time_cursor(cursor)
    if at is None:
        return {}
    stamp = timestamp(at)
    return {"$or": [{"created_at": {"$lt": stamp}}, {"created_at": stamp, "_id": {"$lt": last_id}}]}


def _time_key(doc: dict[str, Any]) -> list[Any]:
    return [datetime.fromisoformat(doc["created_at"]).isoformat(), doc["_id"]]


def _after_semver(cursor: str | None) -> dict[str, Any]:
    after = semver_cursor(cursor)
    if after is None:
        return {}
    major, minor, patch, pre = after
    return {"$or": [
        {"major": {"$lt": major}},
        {"major": major, "minor": {"$lt": minor}},
        {"major": major, "minor": minor, "patch": {"$lt": patch}},
        {"major": major, "minor": minor, "patch": patch, "pre": {"$lt": pre}},
    ]}


def _page(docs: list[dict[str, Any]], limit: int, shape: Callable[[dict[str, Any]], D],
          key: Callable[[dict[str, Any]], list[Any]]) -> Page[D]:
    more = len(docs) > limit
    docs = docs[:limit]
    return Page([shape(d) for d in docs], encode_cursor(key(docs[-1])) if more else None)


def _schema(doc: dict[str, Any]) -> SchemaOut:
    return SchemaOut.model_validate(decode_document(doc))


def _bucket(doc: dict[str, Any]) -> BucketOut:
    return BucketOut.model_validate(decode_document(doc))


def _blob(doc: dict[str, Any]) -> BlobOut:
    return BlobOut.model_validate(decode_document(doc))


def _processor(doc: dict[str, Any]) -> ProcessorOut:
    return ProcessorOut.model_validate(decode_document(doc))


def _job(doc: dict[str, Any]) -> JobOut:
    return JobOut.model_validate(decode_document(doc))


def _migration(doc: dict[str, Any]) -> MigrationOut:
    return MigrationOut.model_validate(decode_document(doc))


def _book_weight(doc: dict[str, Any]) -> int:
    """A book's weight on a page: ``BOOK_ROW_BYTES``, its metadata and its live chapters' summaries."""
    chapters = [c for c in doc["chapters"] if "_deleted" not in c]
    return BOOK_ROW_BYTES + doc.get("metadata_bytes", UNWEIGHED) + sum(c.get("summary_bytes", UNWEIGHED)
                                                                      for c in chapters)


def _fitting(docs: list[dict[str, Any]], weight: Weight) -> list[Any]:
    """The ``_id`` of the first of ``docs`` whose weights fit in ``PAGE_BYTES``; the first always fits."""
    chosen: list[Any] = []
    used = 0
    for doc in docs:
        size = weight(doc)
        if chosen and used + size > PAGE_BYTES:
            break
        chosen.append(doc["_id"])
        used += size
    return chosen


def _in_order(book: dict[str, Any], chapters: list[dict[str, Any]]) -> list[tuple[int, dict[str, Any]]]:
    """(1-based place in ``chapter_ids``, chapter) for the chapters the book lists, in its order."""
    by_id = {c["_id"]: c for c in chapters if "_deleted" not in c}  # never a tombstone
    ids = book.get("chapter_ids") or []
    return [(n, by_id[cid]) for n, cid in enumerate(ids, 1) if cid in by_id]


class MongoReadModel:
    """Implements ``projections.read_model.ReadModel``."""

    def __init__(self, mongo: Mongo) -> None:
        self._mongo = mongo
        self._db = mongo.db

    def _snapshot(self) -> AbstractAsyncContextManager[AsyncClientSession | None]:
        if self._mongo.transactions:
            return self._mongo.client.start_session(snapshot=True)
        return nullcontext()

    async def _find(self, table: str, query: dict[str, Any], sort: list[tuple[str, int]], limit: int,
                    projection: dict[str, int] | None = None) -> list[dict[str, Any]]:
        cursor = self._db[table].find({**query, **LIVE}, projection).sort(sort).limit(limit)
        return await cursor.to_list()

    async def _weighed(self, table: str, keys: list[dict[str, Any]], weight: Weight, sort: list[tuple[str, int]],
                       limit: int, session: AsyncClientSession | None, shape: Callable[[dict[str, Any]], D],
                       key: Callable[[dict[str, Any]], list[Any]]) -> Page[D]:
        """The page of ``keys`` (up to ``limit + 1`` documents' ``_id``, sort fields and the fields ``weight``
        reads, in ``sort`` order) whose weights fit in ``PAGE_BYTES``; one always fits. Only those documents
        are read."""
        if not keys:
            return Page([])
        chosen = _fitting(keys[:limit], weight)
        more = len(keys) > len(chosen)
        docs: list[dict[str, Any]] = []
        used = 0
        found = self._db[table].find({"_id": {"$in": chosen}, **LIVE}, session=session).sort(sort)
        try:
            async for doc in found:
                size = weight(doc)
                if docs and used + size > PAGE_BYTES:
                    more = True  # it grew since its key was read
                    break
                docs.append(doc)
                used += size
        finally:
            await found.close()
        # every chosen document gone between the two reads (deleted meanwhile): go on after the last chosen key
        last = docs[-1] if docs else keys[len(chosen) - 1]
        return Page([shape(d) for d in docs], encode_cursor(key(last)) if more else None)

    @_reachable
    async def user(self, user_id: str) -> UserOut | None:
        doc = await self._db.users.find_one({"_id": user_id, **LIVE})
        return UserOut.model_validate(decode_document(doc)) if doc is not None else None

    @_reachable
    async def user_account(self, user_id: str) -> str | None:
        doc = await self._db.users.find_one({"_id": user_id, **LIVE}, {"account_id": 1})
        return doc["account_id"] if doc is not None else None

    @_reachable
    async def schema(self, schema_id: str) -> SchemaOut | None:
        try:
            name, version = parse_schema_id(schema_id)
        except ValueError:
            return None
        if version is None:
            docs = await self._find("schemas", {"name": name}, _LATEST, 1)
            return _schema(docs[0]) if docs else None
        doc = await self._db.schemas.find_one({"_id": schema_id, **LIVE})
        return _schema(doc) if doc is not None else None

    @_reachable
    async def schema_versions(self, name: str, limit: int, cursor: str | None) -> Page[SchemaOut]:
        limit = clamp_limit(limit)
        query = {"name": name, **_after_semver(cursor), **LIVE}
        fields = {"major": 1, "minor": 1, "patch": 1, "pre": 1, "schema_bytes": 1}
        async with self._snapshot() as session:
            keys = await self._db.schemas.find(query, fields, session=session).sort(_LATEST).limit(limit + 1).to_list()
            return await self._weighed("schemas", keys, _weight("schema_bytes"), _LATEST, limit, session, _schema,
                                       lambda d: [d["major"], d["minor"], d["patch"], d["pre"]])

    @_reachable
    async def bucket(self, bucket_id: str) -> BucketOut | None:
        doc = await self._db.buckets.find_one({"_id": bucket_id, **LIVE})
        return _bucket(doc) if doc is not None else None

    @_reachable
    async def buckets(self, owner_id: str, parent_id: str | None, limit: int, cursor: str | None) -> Page[BucketOut]:
        limit = clamp_limit(limit)
        query = {"owner_id": owner_id, "parent_id": parent_id, **_after_time(cursor)}
        docs = await self._find("buckets", query, _OLDEST, limit + 1)
        return _page(docs, limit, _bucket, _time_key)

    @_reachable
    async def bucket_is_empty(self, bucket_id: str) -> bool:
        if await self._db.buckets.find_one({"parent_id": bucket_id, **LIVE}, {"_id": 1}) is not None:
            return False
        return await self._db.blob_buckets.find_one({"bucket_id": bucket_id, **LIVE}, {"_id": 1}) is None

    @_reachable
    async def blob(self, blob_id: str) -> BlobOut | None:
        doc = await self._db.blobs.find_one({"_id": blob_id, **LIVE})
        return _blob(doc) if doc is not None else None

    @_reachable
    async def blobs(self, owner_id: str, bucket_id: str | None, schema_id: str | None, limit: int,
                    cursor: str | None) -> Page[BlobOut]:
        limit = clamp_limit(limit)
        after = _after_time(cursor)
        if schema_id is not None and "@" not in schema_id:
            latest = await self.schema(schema_id)
            if latest is None:
                return Page([])
            schema_id = latest.id
        query: dict[str, Any] = {"owner_id": owner_id, **after}
        if schema_id is not None:
            query["schema_id"] = schema_id
        fields = {"created_at": 1, "data_bytes": 1}
        async with self._snapshot() as session:
            if bucket_id is None:
                found = self._db.blobs.find({**query, **LIVE}, fields, session=session)
                keys = await found.sort(_OLDEST).limit(limit + 1).to_list()
            else:
                # The bucket's memberships, joined to their blobs (scalar to scalar: no path through an
                # array), each cut down to its key and weight before the sort holds them.
                pipeline: list[dict[str, Any]] = [
                    {"$match": {"bucket_id": bucket_id, **LIVE}},
                    {"$lookup": {"from": "blobs", "localField": "blob_id", "foreignField": "_id", "as": "blob"}},
                    {"$unwind": "$blob"},
                    {"$replaceWith": "$blob"},
                    {"$match": {**query, **LIVE}},
                    {"$project": fields},
                    {"$sort": dict(_OLDEST)},
                    {"$limit": limit + 1},
                ]
                keys = await (await self._db.blob_buckets.aggregate(pipeline, session=session)).to_list()
            return await self._weighed("blobs", keys, _weight("data_bytes"), _OLDEST, limit, session, _blob, _time_key)

    @_reachable
    async def book(self, book_id: str) -> BookOut | None:
        pipeline = [
            {"$match": {"_id": book_id, **LIVE}},
            {"$lookup": {"from": "book_chapters", "localField": "_id", "foreignField": "book_id", "as": "chapters"}},
        ]
        async with self._snapshot() as session:
            docs = await (await self._db.books.aggregate(pipeline, session=session)).to_list()
        if not docs:
            return None
        found = docs[0].pop("chapters")
        book = decode_document(docs[0])
        chapters = [ChapterOut(id=c["id"], title=c["title"], content=c["content"], order=n)
                    for n, (_, c) in enumerate(_in_order(book, found), 1)]
        return BookOut.model_validate({**book, "chapters": chapters})

    @_reachable
    async def books(self, owner_id: str, limit: int, cursor: str | None) -> Page[BookSummary]:
        limit = clamp_limit(limit)
        after = id_cursor(cursor)
        match: dict[str, Any] = {"owner_id": owner_id, **LIVE}
        if after is not None:
            match["_id"] = {"$gt": after}

        def with_chapters(*fields: str) -> dict[str, Any]:
            return {"$lookup": {"from": "book_chapters", "let": {"book": "$_id"}, "as": "chapters", "pipeline": [
                {"$match": {"$expr": {"$eq": ["$book_id", "$$book"]}}},
                {"$project": {**dict.fromkeys(fields, 1), "summary_bytes": 1, "_deleted": 1}},  # not the contents
            ]}}

        def summary(doc: dict[str, Any]) -> BookSummary:
            book = decode_document({k: v for k, v in doc.items() if k != "chapters"})
            chapters = [ChapterSummary(id=c["id"], title=c["title"], order=n)
                        for n, c in _in_order(book, doc["chapters"])]
            return BookSummary.model_validate({**book, "chapters": chapters})

        # The keys' weights: the chapters' summaries summed in the server, not brought here (up to
        # 501 books of up to 10,000 chapters each, which decoded took seconds of the loop).
        weights = {"$lookup": {"from": "book_chapters", "let": {"book": "$_id"}, "as": "chapters", "pipeline": [
            {"$match": {"$expr": {"$eq": ["$book_id", "$$book"]}, "_deleted": {"$exists": False}}},
            {"$group": {"_id": None, "summary_bytes": {"$sum": {"$ifNull": ["$summary_bytes", UNWEIGHED]}}}},
        ]}}
        async with self._snapshot() as session:
            keys = await (await self._db.books.aggregate([
                {"$match": match}, {"$sort": {"_id": ASCENDING}}, {"$limit": limit + 1},
                {"$project": {"metadata_bytes": 1}}, weights,
            ], session=session)).to_list()
            if not keys:
                return Page([])
            chosen = _fitting(keys[:limit], _book_weight)
            docs = await (await self._db.books.aggregate([
                {"$match": {"_id": {"$in": chosen}, **LIVE}}, {"$sort": {"_id": ASCENDING}},
                with_chapters("id", "title"),
            ], session=session)).to_list()
        kept = len(_fitting(docs, _book_weight))  # a book that grew between the two reads ends the page there
        more = len(keys) > len(chosen) or kept < len(docs)
        docs = docs[:kept]
        # every chosen book gone between the two reads (deleted meanwhile): go on after the last chosen key
        last = docs[-1] if docs else keys[len(chosen) - 1]
        return Page([summary(d) for d in docs], encode_cursor([last["_id"]]) if more else None)

    @_reachable
    async def processor(self, processor_id: str) -> ProcessorOut | None:
        doc = await self._db.processors.find_one({"_id": processor_id, **LIVE})
        return _processor(doc) if doc is not None else None

    @_reachable
    async def processors(self, owner_id: str, limit: int, cursor: str | None) -> Page[ProcessorOut]:
        limit = clamp_limit(limit)
        query = {"owner_id": owner_id, **_after_time(cursor), **LIVE}
        async with self._snapshot() as session:
            found = self._db.processors.find(query, {"created_at": 1, "config_bytes": 1}, session=session)
            keys = await found.sort(_OLDEST).limit(limit + 1).to_list()
            return await self._weighed("processors", keys, _PROCESSOR_WEIGHT, _OLDEST, limit, session, _processor,
                                       _time_key)

    @_reachable
    async def job(self, job_id: str) -> JobOut | None:
        doc = await self._db.jobs.find_one({"_id": job_id, **LIVE})
        return _job(doc) if doc is not None else None

    @_reachable
    async def jobs(self, owner_id: str, processor_id: str | None, status: str | None, limit: int,
                   cursor: str | None) -> Page[JobOut]:
        limit = clamp_limit(limit)
        query: dict[str, Any] = {"owner_id": owner_id, **_before_time(cursor)}
        if processor_id is not None:
            query["processor_id"] = processor_id
        if status is not None:
            query["status"] = status
        query.update(LIVE)
        fields = {"created_at": 1, "error_bytes": 1, "last_error_bytes": 1}
        async with self._snapshot() as session:
            keys = await self._db.jobs.find(query, fields, session=session).sort(_NEWEST).limit(limit + 1).to_list()
            return await self._weighed("jobs", keys, _JOB_WEIGHT, _NEWEST, limit, session, _job, _time_key)

    @_reachable
    async def triggered_processors(self, owner_id: str) -> int:
        return await self._db.processors.count_documents({"owner_id": owner_id, "triggers": {"$ne": []}, **LIVE})

    @_reachable
    async def job_ids(self, processor_id: str, statuses: tuple[str, ...]) -> list[str]:
        docs = await self._find("jobs", {"processor_id": processor_id, "status": {"$in": list(statuses)}}, _OLDEST,
                                0, {"_id": 1})
        return [d["_id"] for d in docs]

    @_reachable
    async def running_job_ids(self, owner_id: str) -> set[str]:
        docs = await self._find("jobs", {"owner_id": owner_id, "status": "running"}, _OLDEST, 0, {"_id": 1})
        runs = await self._find("migrations", {"owner_id": owner_id, "status": "running"}, _OLDEST, 0, {"_id": 1})
        return {d["_id"] for d in docs} | {d["_id"] for d in runs}

    @_reachable
    async def migration(self, migration_id: str) -> MigrationOut | None:
        doc = await self._db.migrations.find_one({"_id": migration_id, **LIVE})
        return _migration(doc) if doc is not None else None

    @_reachable
    async def migrations(self, owner_id: str, limit: int, cursor: str | None) -> Page[MigrationOut]:
        limit = clamp_limit(limit)
        query = {"owner_id": owner_id, **_before_time(cursor), **LIVE}
        fields = {"created_at": 1, "errors_bytes": 1, "revert_skipped_bytes": 1}
        async with self._snapshot() as session:
            found = self._db.migrations.find(query, fields, session=session)
            keys = await found.sort(_NEWEST).limit(limit + 1).to_list()
            return await self._weighed("migrations", keys, _MIGRATION_WEIGHT, _NEWEST, limit, session, _migration,
                                       _time_key)

    @_reachable
    async def migration_candidates(self, owner_id: str, schema_ids: list[str], bucket_id: str | None) -> list[str]:
        query: dict[str, Any] = {"owner_id": owner_id, "schema_id": {"$in": list(schema_ids)}}
        if bucket_id is not None:
            tree, frontier = {bucket_id}, [bucket_id]
            while frontier:  # the bucket and its sub-buckets, one level per query
                children = await self._find("buckets", {"parent_id": {"$in": frontier}}, _OLDEST, 0, {"_id": 1})
                frontier = [d["_id"] for d in children if d["_id"] not in tree]
                tree.update(frontier)
            members = await self._find("blob_buckets", {"bucket_id": {"$in": sorted(tree)}}, [("_id", ASCENDING)],
                                       0, {"blob_id": 1})
            query["_id"] = {"$in": sorted({d["blob_id"] for d in members})}
        docs = await self._find("blobs", query, _OLDEST, 0, {"_id": 1})
        return [d["_id"] for d in docs]

    @_reachable
    async def completed_run(self, owner_id: str, from_schema_id: str, schema_id: str, bucket_id: str | None) -> bool:
        doc = await self._db.migrations.find_one({"owner_id": owner_id, "from_schema_id": from_schema_id,
                                                  "schema_id": schema_id, "bucket_id": bucket_id,
                                                  "status": "completed", "dry_run": False, **LIVE}, {"_id": 1})
        return doc is not None

    @_reachable
    async def command_position(self, aggregate_type: str, aggregate_id: str, command_id: str) -> tuple[int, int | None]:
        # the checkpoint first: a projector writes a batch's documents before it moves the checkpoint
        # over them, so every event up to the checkpoint read here is in the index read next
        checkpoint = await self._db[CHECKPOINTS].find_one({"_id": COMMANDS}, {"position": 1})
        doc = await self._db[COMMAND_EVENTS].find_one(
            {"command_id": command_id, "aggregate_id": aggregate_id, "aggregate_type": aggregate_type, **LIVE},
            {"position": 1}, sort=[("position", ASCENDING)])  # the first landing
        return int(checkpoint["position"]) if checkpoint else 0, int(doc["position"]) if doc else None
