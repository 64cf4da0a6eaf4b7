"""Fixtures the contract tests share."""

from __future__ import annotations

import pytest

from adapters.postgres.migrations import migrate
from adapters.postgres.pool import connect
from tests.support.servers import Database


@pytest.fixture
async def blank(database: Database) -> str:
    """A fresh database of the session's PostgreSQL with the read-model tables and no rows."""
    dsn = await database.new_database()
    conn = await connect(dsn)
    try:
        await migrate(conn)
    finally:
        await conn.close()
    return dsn
