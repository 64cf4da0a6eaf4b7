"""asyncpg pools with JSON codecs (orjson) registered on every connection."""

from __future__ import annotations

from typing import Any

import asyncpg
import orjson


def _dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


async def init_connection(conn: asyncpg.Connection) -> None:
    for name in ("jsonb", "json"):
        await conn.set_type_codec(name, encoder=_dumps, decoder=orjson.loads, schema="pg_catalog")


async def _nothing_to_reset(conn: asyncpg.Connection) -> None:
    """The pool serves the read model's queries, which change no session state (no SET,
    LISTEN, advisory lock or cursor), so a returned connection needs no reset statement.
    asyncpg's default reset (``RESET ALL``, ``UNLISTEN *``, unlocks...) is one more round
    trip per query: 12 % of the API process's samples under a GET load. asyncpg still
    rolls back a transaction left open before it calls this."""


async def create_pool(dsn: str, *, min_size: int = 1, max_size: int = 10, timeout: float = 5.0) -> asyncpg.Pool:
    """A pool for queries only: what needs a session of its own (a projector's lock, the
    LISTEN of the positions watch, migrations) opens its own connection (``connect``)."""
    return await asyncpg.create_pool(
        dsn, min_size=min_size, max_size=max_size, init=init_connection, timeout=timeout, command_timeout=30,
        reset=_nothing_to_reset,
    )


async def connect(dsn: str, timeout: float = 5.0) -> asyncpg.Connection:
    conn = await asyncpg.connect(dsn, timeout=timeout)
    await init_connection(conn)
    return conn


# Errors that mean "the database is unreachable", as opposed to "this statement is wrong".
OUTAGE_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    ConnectionError,
    TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.exceptions.OperatorInterventionError,
    asyncpg.exceptions.CannotConnectNowError,
    # 53xxx: too many connections, disk full, out of memory. The server is up but cannot take the
    # work now; waiting is the cure, not halting a projection or answering 500.
    asyncpg.exceptions.InsufficientResourcesError,
)
