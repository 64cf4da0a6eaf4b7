"""PostgreSQL's side of the projector runner (``adapters.projector``).

* A batch of changes and the new checkpoint go in one transaction, followed
  by a NOTIFY of the position (delivered on commit), so read-your-writes
  waits cost no polling.
* One active runner per projection: a session advisory lock on the runner's
  own connection; the others wait as standbys and take over the moment that
  connection drops.
* Each batch takes a shared transaction-level lock that a blue/green swap
  takes exclusively, so a rebuild can swap tables between two batches.
"""

from __future__ import annotations

import asyncio
import zlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg

from adapters.postgres.changes import apply_changes
from adapters.postgres.pool import OUTAGE_ERRORS, connect
from adapters.projector import BeforeCheckpoint, Committed, Projected
from projections.changes import Projection

NOTIFY_CHANNEL = "ink_projection"


def lock_key(name: str) -> int:
    return zlib.crc32(f"projection:{name}".encode())


def swap_lock_key(name: str) -> int:
    return zlib.crc32(f"swap:{name}".encode())


class PostgresProjectionStore:
    """Implements ``adapters.projector.ProjectionStore``: one connection per running projection."""

    kind = "postgres"

    def __init__(self, dsn: str) -> None:
        self._dsn = dsn

    def is_outage(self, exc: BaseException) -> bool:
        return isinstance(exc, OUTAGE_ERRORS)

    @asynccontextmanager
    async def writer(self, projection: Projection) -> AsyncIterator[PostgresWriter]:
        conn = await connect(self._dsn)
        try:
            yield PostgresWriter(conn, projection.name)
        finally:
            try:
                async with asyncio.timeout(2):
                    await conn.close()
            except Exception:  # noqa: BLE001 - closing a broken connection
                conn.terminate()


# Moves the checkpoint forward (never back) and notifies the positions watch, in one round trip.
_MOVE_CHECKPOINT = """
WITH moved AS (
    UPDATE projection_checkpoints SET position = $2, updated_at = now()
    WHERE name = $1 AND position < $2 RETURNING position
)
SELECT pg_notify($3, $1 || ':' || $2::text) FROM moved
"""


class PostgresWriter:
    def __init__(self, conn: asyncpg.Connection, name: str) -> None:
        self._conn = conn
        self._name = name

    async def lead(self) -> bool:
        return bool(await self._conn.fetchval("SELECT pg_try_advisory_lock($1)", lock_key(self._name)))

    async def start(self) -> int:
        await self._conn.execute(
            "INSERT INTO projection_checkpoints (name) VALUES ($1) ON CONFLICT (name) DO NOTHING", self._name
        )
        # A restart (after a fix) retries a halted projection from where it stopped.
        row = await self._conn.fetchrow(
            "UPDATE projection_checkpoints SET status = 'running', error = NULL, error_position = NULL,"
            " updated_at = now() WHERE name = $1 RETURNING position",
            self._name,
        )
        return int(row["position"])

    async def commit(self, events: list[Projected], before_checkpoint: BeforeCheckpoint | None) -> Committed:
        conn = self._conn
        async with conn.transaction():
            # The swap lock, shared (a blue/green swap takes it exclusively between two batches), and the
            # checkpoint, which may have moved under us (a rebuild swapped in tables that are further
            # along): never apply an event twice. One round trip for both.
            stored = int(await conn.fetchval(
                "SELECT position FROM projection_checkpoints, pg_advisory_xact_lock_shared($2)"
                " WHERE name = $1 FOR UPDATE OF projection_checkpoints",
                self._name, swap_lock_key(self._name),
            ) or 0)
            events = [e for e in events if e.position > stored]
            if not events:
                return Committed(stored)
            await apply_changes(conn, [c for e in events for c in e.changes])
            applied = [e.record for e in events]
            if before_checkpoint is not None:
                maybe = before_checkpoint(applied)
                if maybe is not None:
                    await maybe
            last = events[-1].position
            await conn.execute(_MOVE_CHECKPOINT, self._name, last, NOTIFY_CHANNEL)
        return Committed(last, applied)

    async def advance(self, events: list[Projected]) -> Committed:
        """One statement, no transaction of ours: the checkpoint moves forward only, and the
        NOTIFY (delivered when the statement commits) wakes read-your-writes waits."""
        last = events[-1].position
        await self._conn.execute(_MOVE_CHECKPOINT, self._name, last, NOTIFY_CHANNEL)
        return Committed(last)

    async def halt(self, position: int, error: str) -> None:
        await self._conn.execute(
            "UPDATE projection_checkpoints SET status = 'halted', error = $2, error_position = $3, updated_at = now()"
            " WHERE name = $1",
            self._name,
            error,
            position,
        )

    async def idle(self) -> None:
        await self._conn.fetchval("SELECT 1")  # notice a dead connection while idle
