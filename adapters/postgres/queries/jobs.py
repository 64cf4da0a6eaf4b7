"""Processor and job read queries, in the API's answer shapes.

Processors list oldest first, jobs newest first, both keyset-paged by
(created_at, id) with the same opaque cursors as the other lists.
"""

from __future__ import annotations

from typing import Any

import asyncpg

from adapters.postgres.queries.content import _json, _limit, _page, _time_cursor, _time_key
from domain.base import utc

_PROCESSOR_COLUMNS = (
    "id, owner_id, name, type, input_schema, output_schema, config, triggers, limits, created_at, updated_at, version"
)
_JOB_COLUMNS = (
    "id, owner_id, processor_id, processor_version, processor_type, input_blob_id, output_blob_id, status, error, "
    'last_error, attempts, "trigger", depth, created_at, started_at, finished_at, updated_at, version'
)


def processor_answer(row: asyncpg.Record | dict[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "name": row["name"],
        "type": row["type"],
        "input_schema": row["input_schema"],
        "output_schema": row["output_schema"],
        "config": _json(row["config"]),
        "triggers": _json(row["triggers"]),
        "limits": _json(row["limits"]),
        "owner_id": row["owner_id"],
        "version": row["version"],
        "created_at": utc(row["created_at"]),
        "updated_at": utc(row["updated_at"]),
    }


def _time(value: Any) -> str | None:
    return utc(value) if value is not None else None


def job_answer(row: asyncpg.Record | dict[str, Any]) -> dict[str, Any]:
    """A job row (or ``projections.jobs.job_row``) as the API answers it."""
    return {
        "id": row["id"],
        "status": row["status"],
        "processor_id": row["processor_id"],
        "processor_version": row["processor_version"],
        "processor_type": row["processor_type"],
        "input_blob_id": row["input_blob_id"],
        "output_blob_id": row["output_blob_id"],
        "error": _json(row["error"]) if row["error"] is not None else None,
        "last_error": _json(row["last_error"]) if row["last_error"] is not None else None,
        "attempts": row["attempts"],
        "trigger": _json(row["trigger"]) if row["trigger"] is not None else None,
        "depth": row["depth"],
        "owner_id": row["owner_id"],
        "version": row["version"],
        "created_at": utc(row["created_at"]),
        "started_at": _time(row["started_at"]),
        "finished_at": _time(row["finished_at"]),
        "updated_at": utc(row["updated_at"]),
    }


async def get_processor(conn: asyncpg.Connection, processor_id: str) -> dict[str, Any] | None:
    row = await conn.fetchrow(f"SELECT {_PROCESSOR_COLUMNS} FROM processors WHERE id = $1", processor_id)
    return processor_answer(row) if row is not None else None


async def list_processors(
    conn: asyncpg.Connection, owner_id: str, limit: int = 50, cursor: str | None = None
) -> dict[str, Any]:
    """``{items, next_cursor}``: the owner's processors, oldest first."""
    limit = _limit(limit)
    at, last_id = _time_cursor(cursor)
    rows = await conn.fetch(
        f"SELECT {_PROCESSOR_COLUMNS} FROM processors WHERE owner_id = $1"
        " AND ($2::timestamptz IS NULL OR (created_at, id) > ($2, $3)) ORDER BY created_at, id LIMIT $4",
        owner_id, at, last_id, limit + 1,
    )  # fmt: skip
    return _page(rows, limit, processor_answer, _time_key)


async def get_job(conn: asyncpg.Connection, job_id: str) -> dict[str, Any] | None:
    row = await conn.fetchrow(f"SELECT {_JOB_COLUMNS} FROM jobs WHERE id = $1", job_id)
    return job_answer(row) if row is not None else None


async def list_jobs(
    conn: asyncpg.Connection,
    owner_id: str,
    processor_id: str | None = None,
    status: str | None = None,
    limit: int = 50,
    cursor: str | None = None,
) -> dict[str, Any]:
    """``{items, next_cursor}``: the owner's jobs, newest first, optionally of one processor and/or status."""
    limit = _limit(limit)
    at, last_id = _time_cursor(cursor)
    rows = await conn.fetch(
        f"SELECT {_JOB_COLUMNS} FROM jobs WHERE owner_id = $1"
        " AND ($2::text IS NULL OR processor_id = $2) AND ($3::text IS NULL OR status = $3)"
        " AND ($4::timestamptz IS NULL OR (created_at, id) < ($4, $5))"
        " ORDER BY created_at DESC, id DESC LIMIT $6",
        owner_id, processor_id, status, at, last_id, limit + 1,
    )  # fmt: skip
    return _page(rows, limit, job_answer, _time_key)


async def job_ids(conn: asyncpg.Connection, processor_id: str, statuses: tuple[str, ...]) -> list[str]:
    rows = await conn.fetch(
        "SELECT id FROM jobs WHERE processor_id = $1 AND status = ANY($2::text[]) ORDER BY created_at, id",
        processor_id, list(statuses),
    )  # fmt: skip
    return [r["id"] for r in rows]


async def running_job_ids(conn: asyncpg.Connection, owner_id: str) -> set[str]:
    rows = await conn.fetch("SELECT id FROM jobs WHERE owner_id = $1 AND status = 'running'", owner_id)
    return {r["id"] for r in rows}


