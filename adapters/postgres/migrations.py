"""Versioned SQL migrations of the read-model tables, run at start-up.

Files ``migrations/NNNN_name.sql`` run once each, in order, each in its own
transaction, under an advisory lock so that concurrent starters do not race.
A migration may rewrite rows: its commit tells every running process's row
cache to forget what it kept (``row_cache.py``).
"""

from __future__ import annotations

from importlib import resources

import asyncpg

from adapters.postgres.projector import ROWS_CHANNEL, rows_notice
from adapters.postgres.row_cache import EVERYTHING_CHANGED

_LOCK_KEY = 0x1AC5_0001


def migration_files() -> list[tuple[str, str]]:
    folder = resources.files("adapters.postgres") / "migrations"
    files = sorted(p for p in folder.iterdir() if p.name.endswith(".sql"))
    return [(p.name.removesuffix(".sql"), p.read_text(encoding="utf-8")) for p in files]


async def migrate(conn: asyncpg.Connection) -> list[str]:
    """Apply pending migrations; returns the names applied now."""
    applied_now: list[str] = []
    await conn.execute("SELECT pg_advisory_lock($1)", _LOCK_KEY)
    try:
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        done = {r["name"] for r in await conn.fetch("SELECT name FROM schema_migrations")}
        for name, sql in migration_files():
            if name in done:
                continue
            async with conn.transaction():
                await conn.execute(sql)
                await conn.execute("INSERT INTO schema_migrations (name) VALUES ($1)", name)
                # position 0 moves no projection; the rows part is what matters
                await conn.execute("SELECT pg_notify($1, $2)", ROWS_CHANNEL,
                                   rows_notice("schema_migrations", 0, EVERYTHING_CHANGED))
            applied_now.append(name)
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", _LOCK_KEY)
    return applied_now
