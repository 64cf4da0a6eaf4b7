"""Read-your-writes on PostgreSQL: projection positions from LISTEN/NOTIFY.

One LISTEN connection per process follows the projector runners' NOTIFYs
(``name:position``), so a waiting query is woken by the commit that makes its
answer true, without polling. While the connection is down, waits fail with
``Unavailable`` (queries answer 503) and the watch reconnects in the background.
"""

from __future__ import annotations

import asyncio

import asyncpg
import structlog

from adapters.cancellation import raise_if_cancelling
from adapters.positions import PositionBoard
from adapters.postgres.pool import OUTAGE_ERRORS, connect
from adapters.postgres.projector import NOTIFY_CHANNEL

log = structlog.get_logger("inkstream.watch")


class ProjectionWatch(PositionBoard):
    def __init__(self, dsn: str, *, reconnect_delay: float = 0.5) -> None:
        super().__init__()
        self._dsn = dsn
        self._conn: asyncpg.Connection | None = None
        self._reconnect_delay = reconnect_delay

    async def stop(self) -> None:
        try:
            await super().stop()
        finally:
            if self._conn is not None and not self._conn.is_closed():
                self._conn.terminate()

    async def _follow(self) -> None:
        while True:
            raise_if_cancelling()
            try:
                conn = await connect(self._dsn)
                self._conn = conn
                await conn.add_listener(NOTIFY_CHANNEL, self._on_notify)
                await self.refresh(conn)
                self.connection_up()
                while not conn.is_closed():
                    raise_if_cancelling()
                    await asyncio.sleep(1.0)
                    await conn.fetchval("SELECT 1")
                    await self.refresh(conn)  # picks up changes from processes started before LISTEN
            except asyncio.CancelledError:
                raise
            except (*OUTAGE_ERRORS, asyncpg.PostgresError) as exc:
                if self.connected:
                    log.warning("watch.disconnected", store="postgres", error=str(exc) or type(exc).__name__)
            self.connection_down()
            if self._conn is not None and not self._conn.is_closed():
                self._conn.terminate()
            await asyncio.sleep(self._reconnect_delay)

    async def refresh(self, conn: asyncpg.Connection) -> None:
        rows = await conn.fetch("SELECT name, position, status FROM projection_checkpoints")
        for row in rows:
            self.status[row["name"]] = row["status"]
            self.advance(row["name"], int(row["position"]))

    def _on_notify(self, _conn: object, _pid: int, _channel: str, payload: str) -> None:
        name, _, pos = payload.rpartition(":")
        self.advance(name, int(pos))
