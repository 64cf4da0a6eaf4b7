"""Applying projection changes to PostgreSQL tables.

SQL text is built from table and column names that come from our own
projections (never from requests) and cached per shape.
"""

from __future__ import annotations

from functools import lru_cache

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


async def apply_changes(conn: asyncpg.Connection, changes: list[Change], suffix: str = "") -> None:
    """Apply changes in order; ``suffix`` targets the fresh tables of a rebuild."""
    for change in changes:
        table = change.table + suffix
        if isinstance(change, Upsert):
            columns = tuple(change.row)
            await conn.execute(_upsert_sql(table, columns, change.key), *change.row.values())
        elif isinstance(change, Update):
            if not change.fields:
                continue
            await conn.execute(
                _update_sql(table, tuple(change.fields), tuple(change.where)),
                *change.fields.values(),
                *change.where.values(),
            )
        elif isinstance(change, Delete):
            await conn.execute(_delete_sql(table, tuple(change.where)), *change.where.values())
        else:  # pragma: no cover - the Change union is closed
            raise TypeError(f"unknown change {change!r}")
