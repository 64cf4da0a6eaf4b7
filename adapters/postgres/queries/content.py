"""Schema, bucket and blob read queries, in the API's answer shapes.

``conn`` is an asyncpg connection or pool from ``adapters.postgres.pool``
(its JSON codec decodes jsonb). Lists are keyset-paged: the cursor
is opaque to clients (base64url JSON of the last row's sort key), so paging
stays stable while rows are added. Blobs and buckets list oldest first by
(created_at, id); schema versions newest first by semver precedence.
"""

from __future__ import annotations

import base64
import binascii
from datetime import datetime, timezone
from typing import Any

import asyncpg
import orjson

from domain.base import utc
from domain.errors import BadRequest
from domain.ids import is_id
from domain.schema import parse_schema_id

MAX_LIMIT = 500

_SCHEMA_COLUMNS = "id, name, version, owner_id, schema, migration, created_at"
_LATEST = "ORDER BY major DESC, minor DESC, patch DESC, pre DESC"
_BUCKET_COLUMNS = "id, name, type, parent_id, owner_id, created_at, updated_at, version"
_BLOB_COLUMNS = "b.id, b.owner_id, b.schema_id, b.processor_id, b.data, b.bucket_ids, b.version, b.created_at, b.updated_at"


def _json(value: Any) -> Any:
    """A jsonb object or array as Python values, with or without the pool's JSON codec.

    Only for columns that never hold a bare JSON string: with the codec a
    jsonb string arrives as a ``str`` that must not be parsed again.
    """
    return orjson.loads(value) if isinstance(value, (str, bytes)) else value


def _encode_cursor(key: list[Any]) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(key)).decode().rstrip("=")


def _decode_cursor(cursor: str, size: int) -> list[Any]:
    try:
        key = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, ValueError, orjson.JSONDecodeError):
        raise BadRequest("invalid cursor") from None
    if not isinstance(key, list) or len(key) != size:
        raise BadRequest("invalid cursor")
    # A forged cursor must not reach PostgreSQL with what it refuses (NUL, out-of-range integers).
    for part in key:
        if (isinstance(part, str) and "\x00" in part) or (isinstance(part, int) and not -(2**63) <= part < 2**63):
            raise BadRequest("invalid cursor")
    return key


def _time_cursor(cursor: str | None) -> tuple[datetime | None, str | None]:
    """(created_at, id) of the last row of the previous page.

    Exactly what ``_time_key`` hands out: an RFC 3339 time with its offset
    and a row id. Anything else is a 400 here, never an error of the driver:
    a time whose offset takes it outside ``datetime``'s years 1-9999 when
    moved to UTC (``0001-01-01T00:00:00+14:00``) overflows in asyncpg.
    """
    if not cursor:
        return None, None
    at, last_id = _decode_cursor(cursor, 2)
    if not isinstance(at, str) or not is_id(last_id):
        raise BadRequest("invalid cursor")
    try:
        when = datetime.fromisoformat(at)
        if when.tzinfo is None:
            raise ValueError("a cursor's time has an offset")
        return when.astimezone(timezone.utc), last_id
    except (ValueError, OverflowError):
        raise BadRequest("invalid cursor") from None


def _limit(limit: int) -> int:
    return max(1, min(int(limit), MAX_LIMIT))


def _page(rows: list[asyncpg.Record], limit: int, shape: Any, key: Any) -> dict[str, Any]:
    more = len(rows) > limit
    rows = rows[:limit]
    return {"items": [shape(r) for r in rows], "next_cursor": _encode_cursor(key(rows[-1])) if more else None}


def _time_key(row: asyncpg.Record) -> list[Any]:
    return [row["created_at"].isoformat(), row["id"]]


def _schema(row: asyncpg.Record) -> dict[str, Any]:
    return {
        "id": row["id"],
        "name": row["name"],
        "version": row["version"],
        "schema": _json(row["schema"]),
        "migration": _json(row["migration"]),
        "owner_id": row["owner_id"],
        "created_at": utc(row["created_at"]),
    }


def _bucket(row: asyncpg.Record) -> dict[str, Any]:
    return {
        "id": row["id"],
        "name": row["name"],
        "type": row["type"],
        "parent_id": row["parent_id"],
        "owner_id": row["owner_id"],
        "created_at": utc(row["created_at"]),
        "updated_at": utc(row["updated_at"]),
        "version": row["version"],
    }


def _blob(row: asyncpg.Record) -> dict[str, Any]:
    return {
        "id": row["id"],
        "owner_id": row["owner_id"],
        "schema_id": row["schema_id"],
        "processor_id": row["processor_id"],
        "data": row["data"],  # any JSON value, a string included: decoded by the pool's codec
        "bucket_ids": _json(row["bucket_ids"]),
        "version": row["version"],
        "created_at": utc(row["created_at"]),
        "updated_at": utc(row["updated_at"]),
    }


async def get_schema(conn: asyncpg.Connection, schema_id: str) -> dict[str, Any] | None:
    """``name@version``, or a bare name for its latest version; None when unknown."""
    try:
        name, version = parse_schema_id(schema_id)
    except ValueError:
        return None
    if version is None:
        row = await conn.fetchrow(f"SELECT {_SCHEMA_COLUMNS} FROM schemas WHERE name = $1 {_LATEST} LIMIT 1", name)
    else:
        row = await conn.fetchrow(f"SELECT {_SCHEMA_COLUMNS} FROM schemas WHERE id = $1", schema_id)
    return _schema(row) if row is not None else None


async def list_schema_versions(
    conn: asyncpg.Connection, name: str, limit: int = 50, cursor: str | None = None
) -> dict[str, Any]:
    """``{items, next_cursor}``: the versions of ``name``, newest (highest semver) first."""
    limit = _limit(limit)
    after = _decode_cursor(cursor, 4) if cursor else [None, None, None, None]
    if cursor and not (all(isinstance(v, int) and not isinstance(v, bool) for v in after[:3])
                       and isinstance(after[3], str)):
        raise BadRequest("invalid cursor")
    rows = await conn.fetch(
        f"SELECT {_SCHEMA_COLUMNS}, major, minor, patch, pre FROM schemas"
        " WHERE name = $1 AND ($2::bigint IS NULL OR (major, minor, patch, pre) < ($2, $3, $4, $5))"
        f" {_LATEST} LIMIT $6",
        name,
        *after,
        limit + 1,
    )
    return _page(rows, limit, _schema, lambda r: [r["major"], r["minor"], r["patch"], r["pre"]])


async def get_bucket(conn: asyncpg.Connection, bucket_id: str) -> dict[str, Any] | None:
    row = await conn.fetchrow(f"SELECT {_BUCKET_COLUMNS} FROM buckets WHERE id = $1", bucket_id)
    return _bucket(row) if row is not None else None


async def list_buckets(
    conn: asyncpg.Connection,
    owner_id: str,
    parent_id: str | None = None,
    limit: int = 50,
    cursor: str | None = None,
) -> dict[str, Any]:
    """``{items, next_cursor}``: the owner's children of ``parent_id`` (None: their roots), oldest first."""
    limit = _limit(limit)
    at, last_id = _time_cursor(cursor)
    rows = await conn.fetch(
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


async def bucket_is_empty(conn: asyncpg.Connection, bucket_id: str) -> bool:
    """No child buckets and no blobs (the read model's view: wait for it to catch up first)."""
    return not await conn.fetchval(
        "SELECT EXISTS (SELECT 1 FROM buckets WHERE parent_id = $1)"
        " OR EXISTS (SELECT 1 FROM blob_buckets WHERE bucket_id = $1)",
        bucket_id,
    )


async def get_blob(conn: asyncpg.Connection, blob_id: str) -> dict[str, Any] | None:
    row = await conn.fetchrow(f"SELECT {_BLOB_COLUMNS} FROM blobs b WHERE b.id = $1", blob_id)
    return _blob(row) if row is not None else None


async def list_blobs(
    conn: asyncpg.Connection,
    owner_id: str,
    bucket_id: str | None = None,
    schema_id: str | None = None,
    limit: int = 50,
    cursor: str | None = None,
) -> dict[str, Any]:
    """``{items, next_cursor}``: the owner's blobs, oldest first, optionally in one
    bucket and/or of one schema version (a bare schema name means its latest
    version, as everywhere in the API)."""
    limit = _limit(limit)
    at, last_id = _time_cursor(cursor)
    if schema_id is not None and "@" not in schema_id:
        latest = await get_schema(conn, schema_id)
        if latest is None:
            return {"items": [], "next_cursor": None}
        schema_id = latest["id"]
    params: list[Any] = [owner_id]
    where = ["b.owner_id = $1"]
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
    params.append(limit + 1)
    rows = await conn.fetch(
        f"SELECT {_BLOB_COLUMNS} FROM {source} WHERE {' AND '.join(where)}"
        f" ORDER BY b.created_at, b.id LIMIT ${len(params)}",
        *params,
    )
    return _page(rows, limit, _blob, _time_key)
