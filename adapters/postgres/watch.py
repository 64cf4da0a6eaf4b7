"""Read-your-writes on PostgreSQL: projection positions from LISTEN/NOTIFY.

One LISTEN connection per process follows the projector runners' NOTIFYs
(``name:position``), so a waiting query is woken by the commit that makes its
answer true, without polling. While the connection is down, waits fail with
``Unavailable`` (queries answer 503) and the watch reconnects in the background.

Each move also says, just before, on a channel of its own (``ROWS_CHANNEL``),
which rows its commit changed; the watch tells the process's row cache
(``row_cache.py``) and moves the position from that notice. The cache is told to
forget everything whenever a change may have gone unheard: the connection lost,
new or silent, a position learnt by reading the checkpoints, or a move whose
rows notice did not come first (a writer of an older version sends none).
"""

from __future__ import annotations

import asyncio

import asyncpg
import structlog

from adapters.cancellation import raise_if_cancelling
from adapters.positions import PositionBoard
from adapters.postgres.pool import OUTAGE_ERRORS, connect
from adapters.postgres.projector import NOTIFY_CHANNEL, ROWS_CHANNEL, read_rows_notice
from adapters.postgres.row_cache import RowCache

log = structlog.get_logger("inkstream.watch")
# A connection that does not answer its keep-alive query within this is treated as lost.
SILENT_SECONDS = 5.0


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
        try:
            await self._listen()
        finally:  # stopped, or failed in a way nobody foresaw: nothing is heard from now on
            self._hear(False)

    async def _listen(self) -> None:
        while True:
            raise_if_cancelling()
            try:
                conn = await connect(self._dsn)
                self._conn = conn
                await conn.add_listener(ROWS_CHANNEL, self._on_rows)
                await conn.add_listener(NOTIFY_CHANNEL, self._on_notify)
                await self.refresh(conn)
                self._hear(True)
                self.connection_up()
                while not conn.is_closed():
                    raise_if_cancelling()
                    await asyncio.sleep(1.0)
                    await conn.fetchval("SELECT 1", timeout=SILENT_SECONDS)
                    await self.refresh(conn)  # picks up changes from processes started before LISTEN
            except asyncio.CancelledError:
                raise
            except (*OUTAGE_ERRORS, asyncpg.PostgresError, TimeoutError) as exc:
                if self.connected:
                    log.warning("watch.disconnected", store="postgres", error=str(exc) or type(exc).__name__)
            self._hear(False)
            self.connection_down()
            if self._conn is not None and not self._conn.is_closed():
                self._conn.terminate()
            await asyncio.sleep(self._reconnect_delay)

    def _hear(self, hearing: bool) -> None:
        if self._rows is not None:
            self._rows.hearing(hearing)

    async def refresh(self, conn: asyncpg.Connection) -> None:
        rows = await conn.fetch("SELECT name, position, status FROM projection_checkpoints", timeout=SILENT_SECONDS)
        for row in rows:
            self.status[row["name"]] = row["status"]
            self._moved(row["name"], int(row["position"]))  # its rows notice may not be heard yet

    def _on_rows(self, _conn: object, _pid: int, _channel: str, payload: str) -> None:
        name, position, changed = read_rows_notice(payload)
        if self._rows is not None:
            self._rows.changed(changed)
        self.advance(name, position)

    def _on_notify(self, _conn: object, _pid: int, _channel: str, payload: str) -> None:
        name, _, position = payload.rpartition(":")
        self._moved(name, int(position))

    def _moved(self, name: str, position: int) -> None:
        """A position learnt without the rows that got it there: if it is news, forget every kept row."""
        if self._rows is not None and position > self.position(name):
            self._rows.forget_everything()
        self.advance(name, position)
