"""``projections.read_model.ReadModel`` on PostgreSQL.

Rows are validated into the documents of ``projections.documents`` (the
columns carry the fields' names), so no query maps fields by hand. Lists are
keyset-paged (cursors in ``adapters/cursors.py``): paging stays stable while
rows are added. Blobs, buckets and processors list oldest first by
(created_at, id), jobs and migration runs newest first by (created_at, id), schema versions
newest first by semver precedence, books by id (UUIDv7: creation order).

A page of blobs, schema versions, books, processors, jobs or migration runs is
also bounded in bytes (``PAGE_BYTES``): one statement numbers the next
``limit + 1`` rows in order and sums their weights (``data_bytes``,
``schema_bytes``, a book's ``metadata_bytes`` and its chapters' ``summary_bytes``
over ``BOOK_ROW_BYTES``, ``config_bytes``, a job's ``error_bytes`` and ``last_error_bytes`` over
``JOB_ROW_BYTES``, a run's ``errors_bytes`` and ``revert_skipped_bytes`` over
``MIGRATION_ROW_BYTES``)
over a window, from the keys alone, and joins
back the data of the rows within the budget only, so the rows past it never
leave the database. ``fetched`` (how many rows followed the cursor, up to
``limit + 1``) says whether there is a next page. A row written before its
weight was recorded is weighed by its data's text, in the database.

A book is read in one SQL statement, so it sees one committed state even while
the projector commits a batch: the book row's ``chapter_ids`` and the chapter
rows always agree. Chapter content travels as plain text columns, not inside
a JSON aggregate, so a big book is not encoded and parsed as JSON once more.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import asyncpg
import orjson

from adapters.cursors import clamp_limit, encode_cursor, id_cursor, semver_cursor, time_cursor
from adapters.postgres.row_cache import RowCache
from domain.schema import parse_schema_id
from projections.documents import (
    BlobOut,
    BookOut,
    BookSummary,
    BucketOut,
    ChapterOut,
    Document,
    JobOut,
    MigrationOut,
    ProcessorOut,
    SchemaOut,
    UserOut,
)
from projections.books import BOOK_ROW_BYTES
from projections.commands import NAME as COMMANDS
from projections.jobs import JOB_ROW_BYTES
from projections.migrations import MIGRATION_ROW_BYTES
from projections.read_model import PAGE_BYTES, Page

D = TypeVar("D", bound=Document)

_SCHEMA_COLUMNS = "id, name, version, owner_id, schema, migration, created_at"
_LATEST = "ORDER BY major DESC, minor DESC, patch DESC, pre DESC"
_BUCKET_COLUMNS = "id, name, type, parent_id, owner_id, created_at, updated_at, version"
_BLOB_COLUMNS = "b.id, b.owner_id, b.schema_id, b.processor_id, b.data, b.bucket_ids, b.version, b.created_at, b.updated_at"

# What a kept row weighs in a row cache: a row's Python objects, and its JSON at the worst it can
# take once decoded: a list of empty objects (``[{},{},...]``) is 3 bytes of text for 72 of dict
# and pointer, 24 times (typical documents take 3 to 8 times).
_ROW_WEIGHT = 1024
_DECODED_PER_TEXT_BYTE = 24

_PROCESSOR_COLUMNS = (
    "id, owner_id, name, type, input_schema, output_schema, config, triggers, limits, created_at, updated_at, version"
)
_JOB_COLUMNS = (
    "id, owner_id, processor_id, processor_version, processor_type, input_blob_id, output_blob_id, status, error, "
    'last_error, attempts, "trigger", depth, created_at, started_at, finished_at, updated_at, version, position'
)

_MIGRATION_COLUMNS = (
    "id, owner_id, schema_id, from_schema_id, bucket_id, dry_run, status, total, migrated, failed, skipped, errors, "
    "error, reverted, revert_skipped, revert_skipped_blob_ids, created_at, started_at, finished_at, reverted_at, "
    "updated_at, version, position"
)

_MIGRATION_CANDIDATES = """
WITH RECURSIVE tree AS (
    SELECT id FROM buckets WHERE id = $3
    UNION
    SELECT c.id FROM buckets c JOIN tree t ON c.parent_id = t.id
)
SELECT b.id FROM blobs b
WHERE b.owner_id = $1 AND b.schema_id = ANY($2::text[])
  AND ($3::text IS NULL OR EXISTS (SELECT 1 FROM blob_buckets bb JOIN tree t ON bb.bucket_id = t.id
                                   WHERE bb.blob_id = b.id))
ORDER BY b.created_at, b.id
"""

_GET_BOOK = """
SELECT b.id, b.owner_id, b.title, b.metadata, b.version, b.created_at, b.updated_at,
       COALESCE(b.metadata_bytes, octet_length(b.metadata::text)) AS metadata_bytes, ch.n, ch.id AS chapter_id, ch.title AS chapter_title, ch.content
FROM books b
LEFT JOIN LATERAL (
    SELECT o.n, c.id, c.title, c.content
    FROM jsonb_array_elements_text(b.chapter_ids) WITH ORDINALITY AS o(cid, n)
    JOIN book_chapters c ON c.id = o.cid
) ch ON true
WHERE b.id = $1
ORDER BY ch.n
"""

_BOOK_KEYS = f"""
SELECT b.id, {BOOK_ROW_BYTES} + COALESCE(b.metadata_bytes, octet_length(b.metadata::text))
       + COALESCE((SELECT sum(COALESCE(c.summary_bytes, 6 * octet_length(c.title) + 64))
                   FROM book_chapters c WHERE c.book_id = b.id), 0) AS bytes
FROM books b
WHERE b.owner_id = $3 AND ($4::text IS NULL OR b.id > $4)
ORDER BY b.id
LIMIT $1
"""
# A chapter without a stored weight (written before 0010 by a projector of the previous version) is
# weighed by its title's bytes as if each were escaped to six, and its id and order.

_BOOK_SUMMARY_COLUMNS = """
       t.id, t.owner_id, t.title, t.metadata, t.chapter_count, t.version, t.created_at, t.updated_at,
       COALESCE((
           SELECT jsonb_agg(jsonb_build_object('id', c.id, 'title', c.title, 'order', o.n) ORDER BY o.n)
           FROM jsonb_array_elements_text(t.chapter_ids) WITH ORDINALITY AS o(cid, n)
           JOIN book_chapters c ON c.id = o.cid
       ), '[]'::jsonb) AS chapters"""


def _json(value: Any) -> Any:
    """A jsonb object or array as Python values, with or without the pool's JSON codec.

    Only for columns that never hold a bare JSON string: with the codec a
    jsonb string arrives as a ``str`` that must not be parsed again.
    """
    return orjson.loads(value) if isinstance(value, (str, bytes)) else value


def _row(row: asyncpg.Record, *json_columns: str) -> dict[str, Any]:
    fields = dict(row)
    for column in json_columns:
        fields[column] = _json(fields[column])
    return fields


def _page(rows: list[asyncpg.Record], limit: int, shape: Callable[[asyncpg.Record], D],
          key: Callable[[asyncpg.Record], list[Any]]) -> Page[D]:
    more = len(rows) > limit
    rows = rows[:limit]
    return Page([shape(r) for r in rows], encode_cursor(key(rows[-1])) if more else None)


def _weighed(keys: str, order: str, columns: str, table: str) -> str:
    """A statement answering the page of ``keys`` (a query of ``id``, the sort columns and ``bytes``,
    ``LIMIT $1`` rows, in ``order``, which ends with ``id``) that fits in ``$2`` bytes, with the data
    of those rows only."""
    return f"""
WITH keys AS ({keys}),
page AS (
    SELECT id, count(*) OVER () AS fetched, row_number() OVER w AS n, sum(bytes) OVER w AS running
    FROM keys WINDOW w AS (ORDER BY {order} ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)
)
SELECT {columns}, p.fetched FROM page p JOIN {table} ON t.id = p.id
WHERE p.n < $1 AND (p.n = 1 OR p.running <= $2)
ORDER BY p.n
"""


def _on_t(columns: str) -> str:
    """``a, b`` as the columns of the row ``t`` that ``_weighed`` joins."""
    return ", ".join(f"t.{c}" for c in columns.split(", "))


# What a row's JSON weighs as text, from the weights its projection stored (computed for rows
# written before they were): what a page may hold, and what a row cache counts.
_SCHEMA_BYTES = "COALESCE(schema_bytes, octet_length(schema::text) + COALESCE(octet_length(migration::text), 4))"
_BLOB_BYTES = "COALESCE(b.data_bytes, octet_length(b.data::text), 4)"
_PROCESSOR_BYTES = (
    "COALESCE(config_bytes, octet_length(config::text) + octet_length(triggers::text) + octet_length(limits::text))"
)
_JOB_BYTES = (
    f"{JOB_ROW_BYTES} + COALESCE(error_bytes, octet_length(error::text), 4)"
    " + COALESCE(last_error_bytes, octet_length(last_error::text), 4)"
)
_MIGRATION_BYTES = (
    f"{MIGRATION_ROW_BYTES} + COALESCE(errors_bytes, octet_length(errors::text))"
    " + COALESCE(revert_skipped_bytes, octet_length(revert_skipped_blob_ids::text))"
)

# The weighed pages whose statement does not depend on the request: built once.
_SCHEMA_PAGE = _weighed(
    f"SELECT id, major, minor, patch, pre, {_SCHEMA_BYTES} AS bytes"
    " FROM schemas WHERE name = $3 AND ($4::bigint IS NULL OR (major, minor, patch, pre) < ($4, $5, $6, $7))"
    f" {_LATEST} LIMIT $1",
    "major DESC, minor DESC, patch DESC, pre DESC, id", _on_t(_SCHEMA_COLUMNS) + ", t.major, t.minor, t.patch, t.pre",
    "schemas t",
)
_BOOK_PAGE = _weighed(_BOOK_KEYS, "id", _BOOK_SUMMARY_COLUMNS, "books t")
_PROCESSOR_PAGE = _weighed(
    f"SELECT id, created_at, {_PROCESSOR_BYTES} AS bytes"
    " FROM processors WHERE owner_id = $3 AND ($4::timestamptz IS NULL OR (created_at, id) > ($4, $5))"
    " ORDER BY created_at, id LIMIT $1",
    "created_at, id", _on_t(_PROCESSOR_COLUMNS), "processors t",
)
_JOB_PAGE = _weighed(
    f"SELECT id, created_at, {_JOB_BYTES} AS bytes"
    " FROM jobs WHERE owner_id = $3 AND ($4::text IS NULL OR processor_id = $4)"
    " AND ($5::text IS NULL OR status = $5) AND ($6::timestamptz IS NULL OR (created_at, id) < ($6, $7))"
    " ORDER BY created_at DESC, id DESC LIMIT $1",
    "created_at DESC, id DESC", _on_t(_JOB_COLUMNS), "jobs t",
)
_MIGRATION_PAGE = _weighed(
    f"SELECT id, created_at, {_MIGRATION_BYTES} AS bytes"
    " FROM migrations WHERE owner_id = $3 AND ($4::timestamptz IS NULL OR (created_at, id) < ($4, $5))"
    " ORDER BY created_at DESC, id DESC LIMIT $1",
    "created_at DESC, id DESC", _on_t(_MIGRATION_COLUMNS), "migrations t",
)


# One row by its key, with ``kept_bytes`` (what its JSON weighs as text) for the row cache.
_ONE_USER = "SELECT user_id, email, username, created_at, 0 AS kept_bytes FROM users WHERE user_id = $1"
_ONE_SCHEMA = f"SELECT {_SCHEMA_COLUMNS}, {_SCHEMA_BYTES} AS kept_bytes FROM schemas WHERE id = $1"
_ONE_BUCKET = f"SELECT {_BUCKET_COLUMNS}, 0 AS kept_bytes FROM buckets WHERE id = $1"
_ONE_BLOB = f"SELECT {_BLOB_COLUMNS}, {_BLOB_BYTES} AS kept_bytes FROM blobs b WHERE b.id = $1"
_ONE_PROCESSOR = f"SELECT {_PROCESSOR_COLUMNS}, {_PROCESSOR_BYTES} AS kept_bytes FROM processors WHERE id = $1"
_ONE_JOB = f"SELECT {_JOB_COLUMNS}, {_JOB_BYTES} AS kept_bytes FROM jobs WHERE id = $1"
_ONE_MIGRATION = f"SELECT {_MIGRATION_COLUMNS}, {_MIGRATION_BYTES} AS kept_bytes FROM migrations WHERE id = $1"
# The tables whose rows a row cache keeps, each by the column its one-row query reads it by. A book
# is read with its chapters (``book_chapters``), which are not named here: every event that changes
# a chapter row changes its book's row too, in the same commit (``projections/books.py``; a test
# holds it), so the book's notice drops the whole answer.
KEPT_TABLES = {"users": "user_id", "schemas": "id", "buckets": "id", "blobs": "id", "processors": "id",
               "jobs": "id", "migrations": "id", "books": "id"}


def _weighed_page(rows: list[asyncpg.Record], shape: Callable[[asyncpg.Record], D],
                  key: Callable[[asyncpg.Record], list[Any]]) -> Page[D]:
    more = bool(rows) and rows[0]["fetched"] > len(rows)
    return Page([shape(r) for r in rows], encode_cursor(key(rows[-1])) if more else None)


def _time_key(row: asyncpg.Record) -> list[Any]:
    return [row["created_at"].isoformat(), row["id"]]


def _user(row: asyncpg.Record) -> UserOut:
    return UserOut.model_validate(dict(row))


def _schema(row: asyncpg.Record) -> SchemaOut:
    return SchemaOut.model_validate(_row(row, "schema", "migration"))


def _bucket(row: asyncpg.Record) -> BucketOut:
    return BucketOut.model_validate(dict(row))


def _blob(row: asyncpg.Record) -> BlobOut:
    # ``data`` may be any JSON value, a string included: decoded by the pool's codec.
    return BlobOut.model_validate(_row(row, "bucket_ids"))


def _processor(row: asyncpg.Record) -> ProcessorOut:
    return ProcessorOut.model_validate(_row(row, "config", "triggers", "limits"))


def _job(row: asyncpg.Record) -> JobOut:
    fields = dict(row)
    for column in ("error", "last_error", "trigger"):
        if fields[column] is not None:
            fields[column] = _json(fields[column])
    return JobOut.model_validate(fields)


def _migration(row: asyncpg.Record) -> MigrationOut:
    return MigrationOut.model_validate(_row(row, "errors", "revert_skipped_blob_ids"))


class PostgresReadModel:
    """Implements ``projections.read_model.ReadModel``; ``conn`` is a pool or a connection."""

    def __init__(self, conn: asyncpg.Pool | asyncpg.Connection, rows: RowCache | None = None) -> None:
        self._conn = conn
        self._rows = rows
        if rows is not None:
            for table, column in KEPT_TABLES.items():
                rows.keep_table(table, column)

    @property
    def rows(self) -> RowCache | None:
        """The process's row cache, if it keeps rows (its counters tell how often it answered)."""
        return self._rows

    async def _kept(self, table: str, key: str, fetch: Callable[[], Awaitable[tuple[D, int] | None]]) -> D | None:
        """What ``fetch`` answers (the row and its weight), through the row cache if there is one."""
        if self._rows is not None:
            return await self._rows.row(table, key, fetch)
        found = await fetch()
        return None if found is None else found[0]

    async def _one(self, table: str, key: str, sql: str, shape: Callable[[asyncpg.Record], D]) -> D | None:
        """The row of ``table`` whose kept column is ``key``; ``sql`` answers it with ``kept_bytes``."""

        async def fetch() -> tuple[D, int] | None:
            row = await self._conn.fetchrow(sql, key)
            if row is None:
                return None
            return shape(row), _ROW_WEIGHT + _DECODED_PER_TEXT_BYTE * int(row["kept_bytes"])

        return await self._kept(table, key, fetch)

    async def user(self, user_id: str) -> UserOut | None:
        return await self._one("users", user_id, _ONE_USER, _user)

    async def user_account(self, user_id: str) -> str | None:
        return await self._conn.fetchval("SELECT account_id FROM users WHERE user_id = $1", user_id)

    async def schema(self, schema_id: str) -> SchemaOut | None:
        try:
            name, version = parse_schema_id(schema_id)
        except ValueError:
            return None
        if version is None:
            row = await self._conn.fetchrow(
                f"SELECT {_SCHEMA_COLUMNS} FROM schemas WHERE name = $1 {_LATEST} LIMIT 1", name
            )
            return _schema(row) if row is not None else None
        return await self._one("schemas", schema_id, _ONE_SCHEMA, _schema)

    async def schema_versions(self, name: str, limit: int, cursor: str | None) -> Page[SchemaOut]:
        limit = clamp_limit(limit)
        after = semver_cursor(cursor) or [None, None, None, None]
        rows = await self._conn.fetch(_SCHEMA_PAGE, limit + 1, PAGE_BYTES, name, *after)
        return _weighed_page(rows, _schema, lambda r: [r["major"], r["minor"], r["patch"], r["pre"]])

    async def bucket(self, bucket_id: str) -> BucketOut | None:
        return await self._one("buckets", bucket_id, _ONE_BUCKET, _bucket)

    async def buckets(self, owner_id: str, parent_id: str | None, limit: int, cursor: str | None) -> Page[BucketOut]:
        limit = clamp_limit(limit)
        at, last_id = time_cursor(cursor)
        rows = await self._conn.fetch(
            f"SELECT {_BUCKET_COLUMNS} FROM buckets"
            " WHERE owner_id = $1 AND parent_id IS NOT DISTINCT FROM $2"
            " AND ($3::timestamptz IS NULL OR (created_at, id) > ($3, $4))"
            " ORDER BY created_at, id LIMIT $5",
            owner_id,
            parent_id,
            at,
            last_id,
            limit + 1,
        )
        return _page(rows, limit, _bucket, _time_key)

    async def bucket_is_empty(self, bucket_id: str) -> bool:
        return not await self._conn.fetchval(
            "SELECT EXISTS (SELECT 1 FROM buckets WHERE parent_id = $1)"
            " OR EXISTS (SELECT 1 FROM blob_buckets WHERE bucket_id = $1)",
            bucket_id,
        )

    async def blob(self, blob_id: str) -> BlobOut | None:
        return await self._one("blobs", blob_id, _ONE_BLOB, _blob)

    async def blobs(self, owner_id: str, bucket_id: str | None, schema_id: str | None, limit: int,
                    cursor: str | None) -> Page[BlobOut]:
        limit = clamp_limit(limit)
        at, last_id = time_cursor(cursor)
        if schema_id is not None and "@" not in schema_id:
            latest = await self.schema(schema_id)
            if latest is None:
                return Page([])
            schema_id = latest.id
        params: list[Any] = [limit + 1, PAGE_BYTES, owner_id]
        where = ["b.owner_id = $3"]
        source = "blobs b"
        if bucket_id is not None:
            params.append(bucket_id)
            source = f"blob_buckets bb JOIN blobs b ON b.id = bb.blob_id AND bb.bucket_id = ${len(params)}"
        if schema_id is not None:
            params.append(schema_id)
            where.append(f"b.schema_id = ${len(params)}")
        if at is not None:
            params += [at, last_id]
            where.append(f"(b.created_at, b.id) > (${len(params) - 1}, ${len(params)})")
        keys = (
            f"SELECT b.id, b.created_at, {_BLOB_BYTES} AS bytes"
            f" FROM {source} WHERE {' AND '.join(where)} ORDER BY b.created_at, b.id LIMIT $1"
        )
        rows = await self._conn.fetch(_weighed(keys, "created_at, id", _BLOB_COLUMNS.replace("b.", "t."), "blobs t"),
                                      *params)
        return _weighed_page(rows, _blob, _time_key)

    async def book(self, book_id: str) -> BookOut | None:
        return await self._kept("books", book_id, lambda: self._fetch_book(book_id))

    async def _fetch_book(self, book_id: str) -> tuple[BookOut, int] | None:
        rows = await self._conn.fetch(_GET_BOOK, book_id)
        if not rows:
            return None
        first = rows[0]
        chapters = [
            ChapterOut(id=r["chapter_id"], title=r["chapter_title"], order=n, content=r["content"])
            for n, r in enumerate((r for r in rows if r["chapter_id"] is not None), 1)
        ]
        book = BookOut(
            id=first["id"], title=first["title"], metadata=_json(first["metadata"]), chapters=chapters,
            owner_id=first["owner_id"], version=first["version"], created_at=first["created_at"],
            updated_at=first["updated_at"],
        )
        # a chapter's text is a str: at most 4 bytes a character, and as much again for the UTF-8
        # copy CPython keeps once it was encoded (orjson asks for it); the metadata is any JSON
        weight = _ROW_WEIGHT + _DECODED_PER_TEXT_BYTE * int(first["metadata_bytes"] or 0) + sum(
            _ROW_WEIGHT + 8 * (len(c.content) + len(c.title)) for c in chapters
        )
        return book, weight

    async def books(self, owner_id: str, limit: int, cursor: str | None) -> Page[BookSummary]:
        limit = clamp_limit(limit)
        rows = await self._conn.fetch(_BOOK_PAGE, limit + 1, PAGE_BYTES, owner_id, id_cursor(cursor))
        return _weighed_page(rows, lambda r: BookSummary.model_validate(_row(r, "metadata", "chapters")),
                             lambda r: [r["id"]])

    async def processor(self, processor_id: str) -> ProcessorOut | None:
        return await self._one("processors", processor_id, _ONE_PROCESSOR, _processor)

    async def processors(self, owner_id: str, limit: int, cursor: str | None) -> Page[ProcessorOut]:
        limit = clamp_limit(limit)
        at, last_id = time_cursor(cursor)
        rows = await self._conn.fetch(_PROCESSOR_PAGE, limit + 1, PAGE_BYTES, owner_id, at, last_id)
        return _weighed_page(rows, _processor, _time_key)

    async def triggered_processors(self, owner_id: str) -> int:
        return await self._conn.fetchval(
            "SELECT count(*) FROM processors WHERE owner_id = $1 AND triggers <> '[]'::jsonb", owner_id)

    async def job(self, job_id: str) -> JobOut | None:
        return await self._one("jobs", job_id, _ONE_JOB, _job)

    async def jobs(self, owner_id: str, processor_id: str | None, status: str | None, limit: int,
                   cursor: str | None) -> Page[JobOut]:
        limit = clamp_limit(limit)
        at, last_id = time_cursor(cursor)
        rows = await self._conn.fetch(_JOB_PAGE, limit + 1, PAGE_BYTES, owner_id, processor_id, status, at, last_id)
        return _weighed_page(rows, _job, _time_key)

    async def job_ids(self, processor_id: str, statuses: tuple[str, ...]) -> list[str]:
        rows = await self._conn.fetch(
            "SELECT id FROM jobs WHERE processor_id = $1 AND status = ANY($2::text[]) ORDER BY created_at, id",
            processor_id, list(statuses),
        )  # fmt: skip
        return [r["id"] for r in rows]

    async def running_job_ids(self, owner_id: str) -> set[str]:
        rows = await self._conn.fetch(
            "SELECT id FROM jobs WHERE owner_id = $1 AND status = 'running'"
            " UNION ALL SELECT id FROM migrations WHERE owner_id = $1 AND status = 'running'",
            owner_id)
        return {r["id"] for r in rows}

    async def migration(self, migration_id: str) -> MigrationOut | None:
        return await self._one("migrations", migration_id, _ONE_MIGRATION, _migration)

    async def migrations(self, owner_id: str, limit: int, cursor: str | None) -> Page[MigrationOut]:
        limit = clamp_limit(limit)
        at, last_id = time_cursor(cursor)
        rows = await self._conn.fetch(_MIGRATION_PAGE, limit + 1, PAGE_BYTES, owner_id, at, last_id)
        return _weighed_page(rows, _migration, _time_key)

    async def migration_candidates(self, owner_id: str, schema_ids: list[str], bucket_id: str | None) -> list[str]:
        rows = await self._conn.fetch(_MIGRATION_CANDIDATES, owner_id, list(schema_ids), bucket_id)
        return [r["id"] for r in rows]

    async def completed_run(self, owner_id: str, from_schema_id: str, schema_id: str, bucket_id: str | None) -> bool:
        return bool(await self._conn.fetchval(
            "SELECT EXISTS (SELECT 1 FROM migrations WHERE owner_id = $1 AND from_schema_id = $2 AND schema_id = $3"
            " AND bucket_id IS NOT DISTINCT FROM $4 AND status = 'completed' AND NOT dry_run)",
            owner_id, from_schema_id, schema_id, bucket_id,
        ))  # fmt: skip

    async def command_position(self, aggregate_type: str, aggregate_id: str, command_id: str) -> tuple[int, int | None]:
        # one statement, one snapshot: the checkpoint covers exactly the rows this reads
        row = await self._conn.fetchrow(
            "SELECT (SELECT position FROM projection_checkpoints WHERE name = $1) AS checkpoint,"
            " (SELECT min(position) FROM command_events WHERE command_id = $2 AND aggregate_id = $3"
            " AND aggregate_type = $4) AS position",
            COMMANDS, command_id, aggregate_id, aggregate_type,
        )  # fmt: skip
        assert row is not None
        return int(row["checkpoint"] or 0), row["position"]
