"""Read-your-writes on PostgreSQL: projection positions from LISTEN/NOTIFY.

One LISTEN connection per process follows the projector runners' NOTIFYs
(``name:position``), so a waiting query is woken by the commit that makes its
answer true, without polling. While the connection is down, waits fail with
``Unavailable`` (queries answer 503) and the watch reconnects in the background.

The same notices say which rows each commit changed; the watch tells the
process's row cache (``row_cache.py``) before it moves the position, and tells
it to forget everything whenever it may have missed one: the connection lost or
new, or a position learnt by reading the checkpoints instead of a notice.
"""

from __future__ import annotations

import asyncio

import asyncpg
import structlog

from adapters.cancellation import raise_if_cancelling
from adapters.positions import PositionBoard
from adapters.postgres.pool import OUTAGE_ERRORS, connect
from adapters.postgres.projector import NOTIFY_CHANNEL, read_notice
from adapters.postgres.row_cache import RowCache

log = structlog.get_logger("inkstream.watch")


class ProjectionWatch(PositionBoard):
    def __init__(self, dsn: str, *, reconnect_delay: float = 0.5, rows: RowCache | None = None) -> None:
        super().__init__()
        self._dsn = dsn
        self._rows = rows
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
                if self._rows is not None:
                    self._rows.hearing(True)
                self.connection_up()
                while not conn.is_closed():
                    raise_if_cancelling()
                    await asyncio.sleep(1.0)
                    await conn.fetchval("SELECT 1")
                    await self.refresh(conn)  # picks up changes from processes started before LISTEN
            except asyncio.CancelledError:
                if self._rows is not None:
                    self._rows.hearing(False)  # stopped: nothing heard from now on
                raise
            except (*OUTAGE_ERRORS, asyncpg.PostgresError) as exc:
                if self.connected:
                    log.warning("watch.disconnected", store="postgres", error=str(exc) or type(exc).__name__)
            if self._rows is not None:
                self._rows.hearing(False)
            self.connection_down()
            if self._conn is not None and not self._conn.is_closed():
                self._conn.terminate()
            await asyncio.sleep(self._reconnect_delay)

    async def refresh(self, conn: asyncpg.Connection) -> None:
        rows = await conn.fetch("SELECT name, position, status FROM projection_checkpoints")
        for row in rows:
            self.status[row["name"]] = row["status"]
            position = int(row["position"])
            if self._rows is not None and position > self.position(row["name"]):
                self._rows.forget_everything()  # its notice is not heard yet, nor the rows it changed
            self.advance(row["name"], position)

    def _on_notify(self, _conn: object, _pid: int, _channel: str, payload: str) -> None:
        name, position, changed = read_notice(payload)
        if changed is not None and self._rows is not None:
            self._rows.changed(changed)
        self.advance(name, position)
