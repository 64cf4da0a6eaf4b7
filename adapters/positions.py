"""How far each projection has applied the log, as one store reports it.

``ProjectionPositions`` (what read-your-writes waits on) for any store: a
store's watch (``adapters/postgres/watch.py`` with LISTEN/NOTIFY,
``adapters/mongo/watch.py`` with a change stream) feeds it positions as the
projectors commit and says whether it can hear the store at all; a waiting
query is woken by the commit that makes its answer true, without polling, and
fails with ``Unavailable`` (503) at once while the store is unreachable.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable

from adapters.cancellation import cancelling
from commands.ports import Unavailable


class PositionBoard:
    """Subclasses follow a store's projection positions in ``_follow`` (run as a task from
    ``start`` until ``stop``) and report them with ``advance`` and ``connection_up/down``."""

    task_name = "projection-watch"

    def __init__(self) -> None:
        self._task: asyncio.Task[None] | None = None
        self._positions: dict[str, int] = {}
        self._changed = asyncio.Event()  # replaced (after being set) on every advance: a broadcast
        self._connected = asyncio.Event()
        self.status: dict[str, str] = {}

    async def start(self) -> None:
        self._task = asyncio.create_task(self._follow(), name=self.task_name)
        with contextlib.suppress(TimeoutError):
            await self.wait_connected(5)

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                if cancelling():  # the caller of stop() is cancelled too: pass it on
                    raise
            except Exception:  # noqa: BLE001 - the watch failed on its way out: it is stopped either way
                pass

    async def _follow(self) -> None:
        raise NotImplementedError

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    def position(self, name: str) -> int:
        return self._positions.get(name, 0)

    def advance(self, name: str, position: int) -> None:
        if position > self._positions.get(name, 0):
            self._positions[name] = position
            self._wake()

    def connection_up(self) -> None:
        self._connected.set()

    def connection_down(self) -> None:
        self._connected.clear()
        self._wake()  # waiters notice the outage at once

    async def wait_connected(self, timeout: float) -> None:
        async with asyncio.timeout(timeout):
            await self._connected.wait()

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
                await self.wait_connected(min(timeout, 1.0))
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
