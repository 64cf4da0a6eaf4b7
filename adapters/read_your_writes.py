"""Read-your-writes in front of the read model, for every query and every caller.

With ``consistency=eventual`` a query answers at once; with ``min_position=N``
it waits for the read model to reach N; with neither it waits for the log's
last position at query time, so it reflects every command whose answer arrived
before the query was sent. Waits are bounded (``INKSTREAM_READ_WAIT_SECONDS``),
then ``Unavailable`` (503). The HTTP routes, the CLI and the bucket-emptiness
check all wait here, on the projections' own positions (no polling).

The log's last position is one round trip to NATS; concurrent queries share
it (``SharedTail``) without weakening the guarantee: a query only takes the
answer of a lookup that started after the query arrived.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Literal, Protocol

from projections.read_model import BadQuery, ProjectionPositions, ReadModel

Consistency = Literal["eventual", "strong"]


class LogTail(Protocol):
    async def last_position(self) -> int: ...


class SharedTail:
    """``last_position`` of the log, one lookup for every query that arrived before it started.

    A query that arrives while a lookup is in flight does not take its answer
    (the lookup may have been sent before the query's own write was
    acknowledged); it joins the next lookup, which starts as soon as the one
    in flight returns. Under load, one round trip serves every query that
    arrived during the previous one.
    """

    def __init__(self, log: LogTail) -> None:
        self._log = log
        self._pending: asyncio.Future[int] | None = None  # the lookup that queries arriving now will get
        self._inflight: asyncio.Task[None] | None = None

    async def last_position(self) -> int:
        pending = self._pending
        if pending is None:
            pending = self._pending = asyncio.get_running_loop().create_future()
            if self._inflight is None:
                self._launch()
        return await asyncio.shield(pending)

    def _launch(self) -> None:
        future, self._pending = self._pending, None
        assert future is not None
        self._inflight = asyncio.create_task(self._lookup(future))

    async def _lookup(self, future: asyncio.Future[int]) -> None:
        try:
            future.set_result(await self._log.last_position())
        except Exception as exc:  # noqa: BLE001 - every waiter gets the failure
            future.set_exception(exc)
            future.exception()  # retrieved here too: no "never retrieved" warning when all waiters left
        finally:
            self._inflight = None
            if self._pending is not None:
                self._launch()


class ReadYourWrites:
    def __init__(self, model: ReadModel, positions: ProjectionPositions, log: LogTail, wait_seconds: float) -> None:
        self.model = model
        self.positions = positions
        self._log = SharedTail(log)
        self._wait = wait_seconds

    async def read(
        self,
        projections: Sequence[str],
        min_position: int | None = None,
        consistency: Consistency | None = None,
    ) -> ReadModel:
        """The read model once ``projections`` reflect what the caller asked for."""
        if consistency == "eventual":
            return self.model
        last = await self._log.last_position()
        if min_position is not None and min_position > last:
            raise BadQuery(f"min_position {min_position} is beyond the end of the log ({last})")
        await self.positions.wait(last if min_position is None else min_position, projections, self._wait)
        return self.model

    async def job_ids(self, processor_id: str, statuses: tuple[str, ...], position: int) -> list[str]:
        """``commands.ports.JobFinder``: a processor's jobs in ``statuses`` once the jobs projection reached ``position``."""
        model = await self.read(("jobs",), min_position=position)
        return await model.job_ids(processor_id, statuses)

    async def migration_candidates(self, owner_id: str, schema_ids: list[str], bucket_id: str | None,
                                   position: int) -> list[str]:
        """``commands.ports.MigrationFinder``: blobs a run moves, once blobs and buckets reached ``position``."""
        model = await self.read(("blobs", "buckets"), min_position=position)
        return await model.migration_candidates(owner_id, schema_ids, bucket_id)

    async def completed_run(self, owner_id: str, from_schema_id: str, schema_id: str, bucket_id: str | None,
                            position: int) -> bool:
        """``commands.ports.MigrationFinder``: a completed real run, once migrations reached ``position``."""
        model = await self.read(("migrations",), min_position=position)
        return await model.completed_run(owner_id, from_schema_id, schema_id, bucket_id)

    async def triggered_processors(self, owner_id: str) -> int:
        """``commands.processors.TriggeredProcessors``: counted once processors have caught up with the log."""
        model = await self.read(("processors",))
        return await model.triggered_processors(owner_id)

    async def is_empty(self, bucket_id: str) -> bool:
        """``commands.buckets.BucketContents``: decided on the read model once it has caught up with the log."""
        model = await self.read(("buckets", "blobs"))
        return await model.bucket_is_empty(bucket_id)
