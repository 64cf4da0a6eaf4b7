"""Applying projection changes to PostgreSQL tables.

SQL text is built from table and column names that come from our own
projections (never from requests) and cached per shape.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import asyncpg

from projections.changes import Change, Delete, Update, Upsert


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


@lru_cache(maxsize=512)
def _upsert_sql(table: str, columns: tuple[str, ...], key: tuple[str, ...]) -> str:
    cols = ", ".join(_q(c) for c in columns)
    params = ", ".join(f"${i}" for i in range(1, len(columns) + 1))
    updates = ", ".join(f"{_q(c)} = EXCLUDED.{_q(c)}" for c in columns if c not in key)
    conflict = f"ON CONFLICT ({', '.join(_q(k) for k in key)}) " + (f"DO UPDATE SET {updates}" if updates else "DO NOTHING")
    return f"INSERT INTO {_q(table)} ({cols}) VALUES ({params}) {conflict}"


@lru_cache(maxsize=512)
def _update_sql(table: str, fields: tuple[str, ...], where: tuple[str, ...]) -> str:
    sets = ", ".join(f"{_q(c)} = ${i}" for i, c in enumerate(fields, 1))
    conds = " AND ".join(f"{_q(c)} = ${i}" for i, c in enumerate(where, len(fields) + 1))
    return f"UPDATE {_q(table)} SET {sets} WHERE {conds}"


@lru_cache(maxsize=512)
def _delete_sql(table: str, where: tuple[str, ...]) -> str:
    conds = " AND ".join(f"{_q(c)} = ${i}" for i, c in enumerate(where, 1))
    return f"DELETE FROM {_q(table)} WHERE {conds}"


def _statement(change: Change, suffix: str) -> tuple[str, tuple[Any, ...]] | None:
    table = change.table + suffix
    if isinstance(change, Upsert):
        return _upsert_sql(table, tuple(change.row), change.key), tuple(change.row.values())
    if isinstance(change, Update):
        if not change.fields:
            return None
        sql = _update_sql(table, tuple(change.fields), tuple(change.where))
        return sql, (*change.fields.values(), *change.where.values())
    if isinstance(change, Delete):
        return _delete_sql(table, tuple(change.where)), tuple(change.where.values())
    raise TypeError(f"unknown change {change!r}")  # pragma: no cover - the Change union is closed


async def apply_changes(conn: asyncpg.Connection, changes: list[Change], suffix: str = "") -> None:
    """Apply changes; ``suffix`` targets the fresh tables of a rebuild.

    Read-model tables have no foreign keys or triggers between them, so
    changes to different tables commute: they are applied table by table, each
    table's changes in their original order (a later change to a row still
    wins), and consecutive changes of the same shape go in one
    ``executemany``: one round trip per run instead of one per row.
    """
    by_table: dict[str, list[Change]] = {}
    for change in changes:
        by_table.setdefault(change.table, []).append(change)
    for table_changes in by_table.values():
        await _apply_in_order(conn, table_changes, suffix)


async def _apply_in_order(conn: asyncpg.Connection, changes: list[Change], suffix: str) -> None:
    run_sql: str | None = None
    run_args: list[tuple[Any, ...]] = []

    async def flush() -> None:
        if run_sql is None:
            return
        if len(run_args) == 1:
            await conn.execute(run_sql, *run_args[0])
        else:
            await conn.executemany(run_sql, run_args)

    for change in changes:
        statement = _statement(change, suffix)
        if statement is None:
            continue
        sql, args = statement
        if sql != run_sql:
            await flush()
            run_sql, run_args = sql, []
        run_args.append(args)
    await flush()
