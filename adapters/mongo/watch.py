"""Read-your-writes on MongoDB: projection positions from the checkpoint documents.

One change stream per process on ``projection_checkpoints`` wakes a waiting
query on the commit that makes its answer true, without polling; the
documents are read again every second as well, as the PostgreSQL watch does,
and that doubles as the check that the server still answers. A standalone
server has no change streams: there the watch reads the checkpoints every
50 ms instead. While the server is unreachable, waits fail with
``Unavailable`` (queries answer 503) and the watch reconnects in the background.
"""

from __future__ import annotations

import asyncio
from typing import Any

import structlog
from pymongo.errors import OperationFailure, PyMongoError

from adapters.cancellation import raise_if_cancelling
from adapters.mongo.client import Mongo
from adapters.mongo.collections import CHECKPOINTS
from adapters.positions import PositionBoard

log = structlog.get_logger("inkstream.watch")

POLL_SECONDS = 0.05


class MongoWatch(PositionBoard):
    task_name = "mongo-projection-watch"

    def __init__(self, mongo: Mongo, *, reconnect_delay: float = 0.5, refresh_every: float = 1.0) -> None:
        super().__init__()
        self._mongo = mongo
        self._reconnect_delay = reconnect_delay
        self._refresh_every = refresh_every
        self._streams = True

    async def _follow(self) -> None:
        while True:
            raise_if_cancelling()
            try:
                await self.refresh()
                self.connection_up()
                if self._streams:
                    await self._follow_stream()
                else:
                    await self._poll()
            except asyncio.CancelledError:
                raise
            except OperationFailure as exc:
                if self._streams and exc.code in (40573, 136, 303):  # no change streams on this server
                    log.info("watch.polling", store="mongo", reason=str(exc))
                    self._streams = False
                    continue
                self._down(exc)
            except (PyMongoError, OSError) as exc:
                self._down(exc)
            await asyncio.sleep(self._reconnect_delay)

    def _down(self, exc: BaseException) -> None:
        if self.connected:
            log.warning("watch.disconnected", store="mongo", error=(str(exc) or type(exc).__name__)[:200])
        self.connection_down()

    async def _follow_stream(self) -> None:
        loop = asyncio.get_running_loop()
        refreshed = loop.time()
        checkpoints = self._mongo.db[CHECKPOINTS]
        async with await checkpoints.watch(full_document="updateLookup", max_await_time_ms=500) as stream:
            await self.refresh()  # what committed while the stream opened
            while True:
                raise_if_cancelling()
                change = await stream.try_next()
                if change is not None:
                    self._note(change.get("fullDocument"))
                if loop.time() - refreshed >= self._refresh_every:
                    await self.refresh()
                    refreshed = loop.time()

    async def _poll(self) -> None:
        while True:
            raise_if_cancelling()
            await asyncio.sleep(POLL_SECONDS)
            await self.refresh()

    async def refresh(self) -> None:
        async for doc in self._mongo.db[CHECKPOINTS].find({}, {"position": 1, "status": 1}):
            self._note(doc)

    def _note(self, doc: dict[str, Any] | None) -> None:
        if not doc:
            return
        self.status[doc["_id"]] = doc.get("status", "running")
        self.advance(doc["_id"], int(doc.get("position", 0)))
