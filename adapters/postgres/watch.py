"""Read-your-writes: wait until projections reach a log position.

One LISTEN connection per process follows the projector runners' NOTIFYs
(``name:position``), so a waiting query is woken by the commit that makes its
answer true, without polling. While the connection is down, waits fail with
``Unavailable`` (queries answer 503) and the watch reconnects in the background.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable

import asyncpg
import structlog

from adapters.postgres.pool import OUTAGE_ERRORS, connect
from adapters.postgres.projector import NOTIFY_CHANNEL
from commands.ports import Unavailable

log = structlog.get_logger("inkstream.watch")


class ProjectionWatch:
    def __init__(self, dsn: str, *, reconnect_delay: float = 0.5) -> None:
        self._dsn = dsn
        self._positions: dict[str, int] = {}
        self._changed = asyncio.Event()  # replaced (after being set) on every advance: a broadcast
        self._conn: asyncpg.Connection | None = None
        self._task: asyncio.Task[None] | None = None
        self._connected = asyncio.Event()
        self._reconnect_delay = reconnect_delay
        self.status: dict[str, str] = {}

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    def position(self, name: str) -> int:
        return self._positions.get(name, 0)

    async def start(self) -> None:
        self._task = asyncio.create_task(self._keep_listening(), name="projection-watch")
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(5):
                await self._connected.wait()

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        if self._conn is not None and not self._conn.is_closed():
            self._conn.terminate()

    async def _keep_listening(self) -> None:
        while True:
            try:
                conn = await connect(self._dsn)
                self._conn = conn
                await conn.add_listener(NOTIFY_CHANNEL, self._on_notify)
                await self.refresh(conn)
                self._connected.set()
                while not conn.is_closed():
                    await asyncio.sleep(1.0)
                    await conn.fetchval("SELECT 1")
                    await self.refresh(conn)  # picks up changes from processes started before LISTEN
            except asyncio.CancelledError:
                raise
            except (*OUTAGE_ERRORS, asyncpg.PostgresError) as exc:
                if self._connected.is_set():
                    log.warning("watch.disconnected", error=str(exc) or type(exc).__name__)
            self._connected.clear()
            self._wake()  # waiters notice the outage at once
            if self._conn is not None and not self._conn.is_closed():
                self._conn.terminate()
            await asyncio.sleep(self._reconnect_delay)

    async def refresh(self, conn: asyncpg.Connection) -> None:
        rows = await conn.fetch("SELECT name, position, status FROM projection_checkpoints")
        for row in rows:
            self.status[row["name"]] = row["status"]
            self._advance(row["name"], int(row["position"]))

    def _on_notify(self, _conn: object, _pid: int, _channel: str, payload: str) -> None:
        name, _, pos = payload.rpartition(":")
        self._advance(name, int(pos))

    def _advance(self, name: str, position: int) -> None:
        if position > self._positions.get(name, 0):
            self._positions[name] = position
            self._wake()

    def _wake(self) -> None:
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    def reached(self, position: int, names: Iterable[str]) -> bool:
        return all(self._positions.get(n, 0) >= position for n in names)

    async def wait(self, position: int, names: Iterable[str], timeout: float) -> None:
        """Return once every named projection is at ``position`` or later.

        Raises ``Unavailable`` when it does not happen within ``timeout`` or
        the read-model store is unreachable.
        """
        names = tuple(names)
        if self.reached(position, names):
            return
        if not self.connected:
            try:
                async with asyncio.timeout(min(timeout, 1.0)):
                    await self._connected.wait()
            except TimeoutError as exc:
                raise Unavailable("the read-model store is unreachable") from exc
        try:
            async with asyncio.timeout(timeout):
                while not (self.reached(position, names) or not self.connected):
                    await self._changed.wait()
        except TimeoutError as exc:
            raise Unavailable(f"read model has not reached position {position} yet") from exc
        if not self.reached(position, names):
            raise Unavailable("the read-model store is unreachable")
