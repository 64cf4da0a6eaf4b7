"""The projector runner: log → pure projection → PostgreSQL, exactly once.

* Follows the process's shared log reader (``adapters.shared_log``) from the
  projection's checkpoint and applies a batch of changes together with the
  new checkpoint in one transaction, then NOTIFYs
  the position (delivered on commit) so read-your-writes waits cost no polling.
* One active runner per projection: a session advisory lock; others wait as
  standbys.
* Each batch takes a shared transaction-level lock that a blue/green swap
  takes exclusively, so a rebuild can swap tables between two batches.
* An outage (PostgreSQL or NATS) is waited out and the runner resumes from
  its checkpoint. An event whose projection keeps failing is retried with
  backoff, then the projection halts visibly: status and error recorded, the
  metric raised, and ``/health`` reports it. It never skips silently.
"""

from __future__ import annotations

import asyncio
import zlib
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import asyncpg
import structlog

from adapters.postgres.changes import apply_changes
from adapters.postgres.pool import OUTAGE_ERRORS, connect
from adapters.shared_log import SharedLog
from adapters.telemetry.metrics import Metrics
from adapters.telemetry.tracing import Tracing, span_for_batch
from commands.ports import EventStore
from domain.base import EventCodec
from domain.recorded import Recorded
from projections.changes import Projection

log = structlog.get_logger("inkstream.projector")

NOTIFY_CHANNEL = "ink_projection"
SWAP_LOCK_NAMESPACE = 0x1AC5


def lock_key(name: str) -> int:
    return zlib.crc32(f"projection:{name}".encode())


def swap_lock_key(name: str) -> int:
    return zlib.crc32(f"swap:{name}".encode())


class ProjectionHalted(Exception):
    """The projection stopped on an event it cannot apply."""


ProjectorStatus = Literal["starting", "standby", "running", "halted", "waiting"]


@dataclass
class ProjectorState:
    name: str
    position: int = 0
    status: ProjectorStatus = "starting"
    error: str | None = None
    error_position: int | None = None
    active: bool = False


BeforeCheckpoint = Callable[[list[Recorded]], Awaitable[None] | None]


class ProjectorRunner:
    def __init__(
        self,
        projection: Projection,
        *,
        dsn: str,
        store: EventStore,
        codec: EventCodec,
        metrics: Metrics | None = None,
        batch_size: int = 500,
        retry_delays: Sequence[float] = (0.05, 0.2, 0.5, 1.0, 2.0),
        idle_check: float = 2.0,
        before_checkpoint: BeforeCheckpoint | None = None,
        tracer: Tracing | None = None,
        shared_log: SharedLog | None = None,
    ) -> None:
        self.projection = projection
        self.name = projection.name
        self._dsn = dsn
        self._store = store
        self._codec = codec
        self._metrics = metrics
        self._batch_size = batch_size
        self._retry_delays = tuple(retry_delays)
        self._idle_check = idle_check
        self._before_checkpoint = before_checkpoint
        self._tracer = tracer
        # Without a shared reader (a runner on its own, in tests) it reads on its own cursor.
        self._log = shared_log or SharedLog(store)
        self.state = ProjectorState(projection.name)
        self._lag_reported = 0.0

    # -- lifecycle -------------------------------------------------------------

    async def run(self) -> None:
        """Run until cancelled or halted; outages are waited out."""
        delay = 0.1
        while True:
            try:
                await self._run_once()
                return
            except ProjectionHalted:
                return
            except Exception as exc:  # noqa: BLE001 - poison events halt inside; the rest is an outage
                self.state.status = "waiting"
                self.state.active = False
                log.warning("projector.outage", projection=self.name, error=str(exc) or type(exc).__name__)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)

    async def _run_once(self) -> None:
        conn = await connect(self._dsn)
        try:
            await self._become_leader(conn)
            position = await self._read_checkpoint(conn)
            self.state.position = position
            self.state.status = "running"
            self.state.active = True
            self.state.error = None
            log.info("projector.started", projection=self.name, position=position)
            await self._consume(conn, position)
        finally:
            self.state.active = False
            try:
                async with asyncio.timeout(2):
                    await conn.close()
            except Exception:  # noqa: BLE001 - closing a broken connection
                conn.terminate()

    async def _become_leader(self, conn: asyncpg.Connection) -> None:
        key = lock_key(self.name)
        while not await conn.fetchval("SELECT pg_try_advisory_lock($1)", key):
            self.state.status = "standby"
            await asyncio.sleep(1.0)

    async def _read_checkpoint(self, conn: asyncpg.Connection) -> int:
        await conn.execute(
            "INSERT INTO projection_checkpoints (name) VALUES ($1) ON CONFLICT (name) DO NOTHING", self.name
        )
        # A restart (after a fix) retries a halted projection from where it stopped.
        row = await conn.fetchrow(
            "UPDATE projection_checkpoints SET status = 'running', error = NULL, error_position = NULL,"
            " updated_at = now() WHERE name = $1 RETURNING position",
            self.name,
        )
        return int(row["position"])

    # -- the loop --------------------------------------------------------------

    async def _consume(self, conn: asyncpg.Connection, position: int) -> None:
        follower = self._log.follow(position + 1, max_batch=self._batch_size, idle=self._idle_check)
        try:
            while True:
                batch = [r for r in await follower.next_batch() if r.position > self.state.position]
                if batch:
                    await self._apply(conn, batch)
                    await self._report_lag()
                else:
                    await self._idle(conn)
        finally:
            await follower.close()

    async def _idle(self, conn: asyncpg.Connection) -> None:
        await conn.fetchval("SELECT 1")  # notice a dead connection while idle
        await self._report_lag(force=True)

    async def _report_lag(self, force: bool = False) -> None:
        """``projection_lag_events``: at most once a second while busy (one log request)."""
        now = asyncio.get_running_loop().time()
        if self._metrics is None or (not force and now - self._lag_reported < 1.0):
            return
        self._lag_reported = now
        last = await self._store.last_position()
        self._metrics.projection_lag.labels(self.name).set(max(0, last - self.state.position))

    async def _apply(self, conn: asyncpg.Connection, batch: list[Recorded]) -> None:
        try:
            await self._commit(conn, batch)
            return
        except OUTAGE_ERRORS:
            raise
        except Exception as exc:  # noqa: BLE001 - isolate the event that fails
            if len(batch) > 1:
                log.warning("projector.batch_failed", projection=self.name, error=str(exc))
                for record in batch:
                    await self._apply_one_with_retries(conn, record)
                return
            await self._apply_one_with_retries(conn, batch[0], first_error=exc)

    async def _apply_one_with_retries(
        self, conn: asyncpg.Connection, record: Recorded, first_error: BaseException | None = None
    ) -> None:
        error = first_error
        attempts = [0.0, *self._retry_delays] if first_error is None else list(self._retry_delays)
        for delay in attempts:
            if delay:
                await asyncio.sleep(delay)
            try:
                await self._commit(conn, [record])
                return
            except OUTAGE_ERRORS:
                raise
            except Exception as exc:  # noqa: BLE001
                error = exc
                log.warning("projector.retry", projection=self.name, position=record.position, error=str(exc))
        await self._halt(conn, record, error)

    async def _commit(self, conn: asyncpg.Connection, batch: list[Recorded]) -> None:
        last = batch[-1].position
        async with conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock_shared($1)", swap_lock_key(self.name))
            # The checkpoint may have moved under us (a rebuild swapped in tables
            # that are further along): never apply an event twice.
            stored = await conn.fetchval(
                "SELECT position FROM projection_checkpoints WHERE name = $1 FOR UPDATE", self.name
            )
            batch = [r for r in batch if r.position > (stored or 0)]
            if not batch:
                self.state.position = max(self.state.position, int(stored or 0))
                return
            changes = [c for record in batch for c in self.projection.changes(self._codec.upcast(record))]
            await apply_changes(conn, changes)
            if self._before_checkpoint is not None:
                maybe = self._before_checkpoint(batch)
                if maybe is not None:
                    await maybe
            await conn.execute(
                "UPDATE projection_checkpoints SET position = $2, updated_at = now() WHERE name = $1",
                self.name,
                last,
            )
            await conn.execute("SELECT pg_notify($1, $2)", NOTIFY_CHANNEL, f"{self.name}:{last}")
        self.state.position = last
        if self._metrics is not None:
            self._metrics.projection_events.labels(self.name).inc(len(batch))
            self._metrics.db_queries.labels("projection_batch").inc()
        if self._tracer is not None:
            self._trace(batch)

    def _trace(self, batch: list[Recorded]) -> None:
        assert self._tracer is not None
        span_for_batch(self._tracer, f"project {self.name}", batch)

    async def _halt(self, conn: asyncpg.Connection, record: Recorded, error: BaseException | None) -> None:
        message = f"{type(error).__name__}: {error}" if error else "unknown error"
        await conn.execute(
            "UPDATE projection_checkpoints SET status = 'halted', error = $2, error_position = $3, updated_at = now()"
            " WHERE name = $1",
            self.name,
            message,
            record.position,
        )
        self.state.status = "halted"
        self.state.error = message
        self.state.error_position = record.position
        if self._metrics is not None:
            self._metrics.projection_halted.labels(self.name).set(1)
        log.error("projector.halted", projection=self.name, position=record.position, error=message)
        raise ProjectionHalted(message)
