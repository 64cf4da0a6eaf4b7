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
from adapters.postgres.row_cache import changed_rows
from adapters.projector import BeforeCheckpoint, Committed, Projected
from projections.changes import Projection

NOTIFY_CHANNEL = "ink_projection"


ROWS_CHANNEL = "ink_rows"


def rows_notice(name: str, position: int, changed: bytes) -> str:
    """What a checkpoint's move changed, on ``ROWS_CHANNEL``: ``name:position``, a newline and
    ``row_cache.changed_rows``. Sent just before the move's own ``name:position`` on
    ``NOTIFY_CHANNEL`` (unchanged, so an older process still reads it), in the same transaction:
    a listener hears both in commit order."""
    return f"{name}:{position}\n{changed.decode()}"


def read_rows_notice(payload: str) -> tuple[str, int, str]:
    head, _, changed = payload.partition("\n")
    name, _, position = head.rpartition(":")
    return name, int(position), changed


def lock_key(name: str) -> int:
    return zlib.crc32(f"projection:{name}".encode())


def swap_lock_key(name: str) -> int:
    return zlib.crc32(f"swap:{name}".encode())


class PostgresProjectionStore:
    """Implements ``adapters.projector.ProjectionStore``: one connection per running projection."""

    kind = "postgres"

    def __init__(self, dsn: str) -> None:
        self._dsn = dsn
        self._moves = CheckpointMoves()

    def is_outage(self, exc: BaseException) -> bool:
        return isinstance(exc, OUTAGE_ERRORS)

    @asynccontextmanager
    async def writer(self, projection: Projection) -> AsyncIterator[PostgresWriter]:
        conn = await connect(self._dsn)
        try:
            yield PostgresWriter(conn, projection.name, self._moves)
        finally:
            try:
                async with asyncio.timeout(2):
                    await conn.close()
            except Exception:  # noqa: BLE001 - closing a broken connection
                conn.terminate()


# Moves the checkpoint forward (never back) and notifies the positions watch, in one round trip:
# first the rows changed (``$5``, JSON text) on the rows channel, then the position.
_MOVE_CHECKPOINT = """
WITH moved AS (
    UPDATE projection_checkpoints SET position = $2, updated_at = now()
    WHERE name = $1 AND position < $2 RETURNING position
)
SELECT pg_notify($4, $1 || ':' || $2::text || E'\\n' || $5), pg_notify($3, $1 || ':' || $2::text) FROM moved
"""
NO_ROWS = "{}"

# The same for several projections at once, each only while its runner's connection (the
# backend ``pid``) still holds the projection's lock: a move carried by another connection of
# the process must not land for a runner that has lost the lead (its connection dropped).
# A bigint advisory lock shows in pg_locks as classid (high half), objid (low half), objsubid 1.
_MOVE_CHECKPOINTS = """
WITH moved AS (
    UPDATE projection_checkpoints c SET position = m.position, updated_at = now()
    FROM unnest($1::text[], $2::bigint[], $3::bigint[], $4::int[]) AS m(name, position, lock_key, pid)
    WHERE c.name = m.name AND c.position < m.position
      AND EXISTS (
        SELECT 1 FROM pg_locks l
        WHERE l.locktype = 'advisory' AND l.granted AND l.pid = m.pid AND l.objsubid = 1
          AND l.classid = (m.lock_key >> 32)::oid AND l.objid = (m.lock_key & 4294967295)::oid
      )
    RETURNING c.name, c.position
)
SELECT pg_notify($6, name || ':' || position::text || E'\\n{}'), pg_notify($5, name || ':' || position::text) FROM moved
"""


class CheckpointMoves:
    """The checkpoint moves of every projection of one process for batches that change
    nothing in them, made together: one statement for all, not one per projection.

    Every runner receives the same batch from the process's shared log reader at the
    same moment, and most of them have nothing to apply (a blob event changes only the
    blobs projection), so each batch used to cost one round trip per projection. The
    first runner to arrive yields once to the loop, so that the others that received the
    batch queue their moves, and then moves them all on its own connection; moves that
    arrive meanwhile go in the next statement. A move lands only while its runner's own
    connection still holds the projection's lock, as if that connection had made it, so
    a runner that lost the lead never moves the checkpoint of the one that took over. If
    the statement fails, the runners whose moves it carried make theirs themselves, on
    their own connections (the flushing runner gets the error).
    """

    def __init__(self) -> None:
        self._queued: dict[str, tuple[int, int]] = {}  # name -> (position, backend pid of its runner)
        self._waiters: list[asyncio.Future[bool]] = []
        self._flushing = False

    async def move(self, conn: asyncpg.Connection, name: str, position: int) -> None:
        if conn.is_closed():  # its lock is gone with it: an outage for this runner
            raise asyncpg.ConnectionDoesNotExistError("the projection's connection is closed")
        self._queued[name] = (max(position, self._queued.get(name, (0, 0))[0]), conn.get_server_pid())
        if self._flushing:
            done = asyncio.get_running_loop().create_future()
            self._waiters.append(done)
            if not await done:
                await conn.execute(_MOVE_CHECKPOINT, name, position, NOTIFY_CHANNEL, ROWS_CHANNEL, NO_ROWS)
            return
        self._flushing = True
        waiters: list[asyncio.Future[bool]] = []
        try:
            await asyncio.sleep(0)  # let the runners that received the same batch queue theirs
            while self._queued:
                moves, waiters = self._queued, self._waiters
                self._queued, self._waiters = {}, []
                await conn.execute(
                    _MOVE_CHECKPOINTS, list(moves), [p for p, _ in moves.values()],
                    [lock_key(name) for name in moves], [pid for _, pid in moves.values()], NOTIFY_CHANNEL,
                    ROWS_CHANNEL,
                )  # fmt: skip
                _settle(waiters, True)
        finally:
            self._flushing = False
            _settle(waiters + self._waiters, False)  # after a failure: each makes its own move
            self._queued, self._waiters = {}, []


def _settle(waiters: list[asyncio.Future[bool]], result: bool) -> None:
    for waiter in waiters:
        if not waiter.done():
            waiter.set_result(result)


class PostgresWriter:
    def __init__(self, conn: asyncpg.Connection, name: str, moves: CheckpointMoves | None = None) -> None:
        self._conn = conn
        self._name = name
        self._moves = moves

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
            changes = [c for e in events for c in e.changes]
            await apply_changes(conn, changes)
            applied = [e.record for e in events]
            if before_checkpoint is not None:
                maybe = before_checkpoint(applied)
                if maybe is not None:
                    await maybe
            last = events[-1].position
            # the rows changed travel with the position: a process's row cache drops them before
            # read-your-writes learns that the position is reached (adapters/postgres/row_cache.py)
            await conn.execute(_MOVE_CHECKPOINT, self._name, last, NOTIFY_CHANNEL, ROWS_CHANNEL,
                               changed_rows(changes).decode())
        return Committed(last, applied)

    async def advance(self, events: list[Projected]) -> Committed:
        """One statement, no transaction of ours: the checkpoint moves forward only, and the
        NOTIFY (delivered when the statement commits) wakes read-your-writes waits."""
        last = events[-1].position
        if self._moves is not None:
            await self._moves.move(self._conn, self._name, last)
        else:
            await self._conn.execute(_MOVE_CHECKPOINT, self._name, last, NOTIFY_CHANNEL, ROWS_CHANNEL, NO_ROWS)
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
