"""The projector runner: log → pure projection → a read-model store, each event once.

This is the part of projecting that does not depend on the store, shared by
PostgreSQL (``adapters/postgres/projector.py``) and MongoDB
(``adapters/mongo/projector.py``):

* It follows the process's shared log reader (``adapters.shared_log``) from
  the store's checkpoint, turns each event into changes with the pure
  projection, and hands the store a batch at a time. The store applies the
  batch and moves the checkpoint with it, atomically (a PostgreSQL
  transaction, a MongoDB transaction where the server offers them) or
  idempotently (MongoDB's position-guarded writes), so a crash replays at most
  one batch and changes nothing twice.
* One active runner per projection and store: the store decides who leads
  (an advisory lock, a lease); the others wait as standbys.
* An outage (the store or NATS) is waited out and the runner resumes from its
  checkpoint. An event whose projection keeps failing is retried with backoff,
  then the projection halts visibly: status and error recorded in the store,
  the metric raised, and ``/health`` reports it. It never skips silently.
* ``projection_lag_events`` is reported at most once a second while busy, and
  on every idle tick.

A store implements ``ProjectionStore``: what is specific to it (connections,
leadership, the transaction, the checkpoint's table or collection) and nothing
else.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Literal, Protocol

import structlog

from adapters.cancellation import raise_if_cancelling
from adapters.shared_log import SharedLog
from adapters.telemetry.metrics import Metrics
from adapters.telemetry.tracing import Tracing, span_for_batch
from commands.ports import EventStore
from domain.base import EventCodec
from domain.recorded import Recorded
from projections.changes import Change, Projection

log = structlog.get_logger("inkstream.projector")


def _short(exc: BaseException) -> str:
    """An outage's reason for the log, without a driver's page of topology details."""
    text = str(exc) or type(exc).__name__
    return text if len(text) <= 200 else text[:200] + "..."


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


@dataclass(frozen=True, slots=True)
class Projected:
    """One event and the changes the projection made of it."""

    record: Recorded
    changes: list[Change]

    @property
    def position(self) -> int:
        return self.record.position


@dataclass(frozen=True, slots=True)
class Committed:
    """What a store's ``commit`` did: the checkpoint it now holds, and the events it applied."""

    position: int
    applied: list[Recorded] = field(default_factory=list)


BeforeCheckpoint = Callable[[list[Recorded]], Awaitable[None] | None]


class ProjectionWriter(Protocol):
    """One projection's writer on one store, open for as long as the runner leads."""

    async def lead(self) -> bool:
        """Try to become the projection's one active writer; False while another process is."""
        ...

    async def start(self) -> int:
        """The checkpoint to resume after; clears a recorded halt (a restart retries it)."""
        ...

    async def commit(self, events: list[Projected], before_checkpoint: BeforeCheckpoint | None) -> Committed:
        """Apply the events after the stored checkpoint, then move the checkpoint to the
        last of them: atomically or idempotently. ``before_checkpoint`` runs between
        the two (tests stand a crash there). The stored checkpoint may be ahead of
        the runner (a rebuild swapped in further-along tables): then nothing is applied."""
        ...

    async def advance(self, events: list[Projected]) -> Committed:
        """Move the checkpoint past events that change nothing in this projection (most
        events, for most projections): nothing to apply, so no transaction, only the
        checkpoint and the positions watch. Never moves the checkpoint back."""
        ...

    async def halt(self, position: int, error: str) -> None:
        """Record that the projection stopped on the event at ``position``."""
        ...

    async def idle(self) -> None:
        """Called while no events arrive: notice a dead connection, keep the lead."""
        ...


class ProjectionStore(Protocol):
    """A read-model store the runner projects into."""

    kind: str  # "postgres" | "mongo": the ``store`` label of the projection metrics

    def is_outage(self, exc: BaseException) -> bool:
        """The store is unreachable (or the lead was lost): wait and resume, never halt on it."""
        ...

    def writer(self, projection: Projection) -> AbstractAsyncContextManager[ProjectionWriter]: ...


BATCH_BYTES = 4 * 1024 * 1024
"""Events' bytes one commit writes at most. 500 events of a user's 512 KiB blobs are 250 MB in one
transaction: more than a MongoDB transaction may hold (``TransactionTooLargeForCache``, which is labelled
transient, so it was retried as an outage, forever), and more memory than one commit should take."""


def by_bytes(batch: list[Recorded], limit: int) -> list[list[Recorded]]:
    """``batch`` in order, cut into runs of at most ``limit`` bytes (an event larger than that alone)."""
    parts: list[list[Recorded]] = []
    size = 0
    for record in batch:
        if not parts or (parts[-1] and size + record.size > limit):
            parts.append([])
            size = 0
        parts[-1].append(record)
        size += record.size
    return parts


class ProjectorRunner:
    def __init__(
        self,
        projection: Projection,
        target: ProjectionStore,
        *,
        store: EventStore,
        codec: EventCodec,
        metrics: Metrics | None = None,
        batch_size: int = 500,
        batch_bytes: int = BATCH_BYTES,
        retry_delays: Sequence[float] = (0.05, 0.2, 0.5, 1.0, 2.0),
        idle_check: float = 2.0,
        standby_poll: float = 1.0,
        before_checkpoint: BeforeCheckpoint | None = None,
        tracer: Tracing | None = None,
        shared_log: SharedLog | None = None,
    ) -> None:
        self.projection = projection
        self.name = projection.name
        self.target = target
        self.store_kind = target.kind
        self._store = store
        self._codec = codec
        self._metrics = metrics
        self._batch_size = batch_size
        self._batch_bytes = batch_bytes
        self._retry_delays = tuple(retry_delays)
        self._idle_check = idle_check
        self._standby_poll = standby_poll
        self._before_checkpoint = before_checkpoint
        self._tracer = tracer
        # Without a shared reader (a runner on its own, in tests) it reads on its own cursor.
        self._log = shared_log or SharedLog(store)
        self.state = ProjectorState(projection.name)
        self._lag_reported = 0.0
        # One trace may reach several stores' runners: the span says which.
        self._span_name = f"project {self.name}" + ("" if target.kind == "postgres" else f" into {target.kind}")

    # -- lifecycle -------------------------------------------------------------

    async def run(self) -> None:
        """Run until cancelled or halted; outages are waited out."""
        delay = 0.1
        while True:
            raise_if_cancelling()
            try:
                await self._run_once()
                return
            except ProjectionHalted:
                return
            except Exception as exc:  # noqa: BLE001 - poison events halt inside; the rest is an outage
                self.state.status = "waiting"
                self.state.active = False
                log.warning("projector.outage", projection=self.name, store=self.store_kind, error=_short(exc))
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)

    async def _run_once(self) -> None:
        async with self.target.writer(self.projection) as writer:
            try:
                while not await writer.lead():
                    raise_if_cancelling()
                    self.state.status = "standby"
                    await asyncio.sleep(self._standby_poll)
                position = await writer.start()
                self.state.position = position
                self.state.status = "running"
                self.state.active = True
                self.state.error = None
                log.info("projector.started", projection=self.name, store=self.store_kind, position=position)
                await self._consume(writer, position)
            finally:
                self.state.active = False

    # -- the loop --------------------------------------------------------------

    async def _consume(self, writer: ProjectionWriter, position: int) -> None:
        follower = self._log.follow(position + 1, max_batch=self._batch_size, idle=self._idle_check)
        try:
            while True:
                raise_if_cancelling()
                batch = [r for r in await follower.next_batch() if r.position > self.state.position]
                if batch:
                    for part in by_bytes(batch, self._batch_bytes):
                        await self._apply(writer, part)
                    await self._report_lag()
                else:
                    await writer.idle()
                    await self._report_lag(force=True)
        finally:
            await follower.close()

    async def _report_lag(self, force: bool = False) -> None:
        """``projection_lag_events``: at most once a second while busy (one log request)."""
        now = asyncio.get_running_loop().time()
        if self._metrics is None or (not force and now - self._lag_reported < 1.0):
            return
        self._lag_reported = now
        last = await self._store.last_position()
        self._metrics.projection_lag.labels(self.name, self.store_kind).set(max(0, last - self.state.position))

    async def _apply(self, writer: ProjectionWriter, batch: list[Recorded]) -> None:
        try:
            await self._commit(writer, batch)
            return
        except Exception as exc:  # noqa: BLE001 - isolate the event that fails
            if self.target.is_outage(exc):
                raise
            if len(batch) > 1:
                log.warning("projector.batch_failed", projection=self.name, store=self.store_kind, error=str(exc))
                for record in batch:
                    await self._apply_one_with_retries(writer, record)
                return
            await self._apply_one_with_retries(writer, batch[0], first_error=exc)

    async def _apply_one_with_retries(
        self, writer: ProjectionWriter, record: Recorded, first_error: BaseException | None = None
    ) -> None:
        error = first_error
        attempts = [0.0, *self._retry_delays] if first_error is None else list(self._retry_delays)
        for delay in attempts:
            if delay:
                await asyncio.sleep(delay)
            try:
                await self._commit(writer, [record])
                return
            except Exception as exc:  # noqa: BLE001
                if self.target.is_outage(exc):
                    raise
                error = exc
                log.warning("projector.retry", projection=self.name, store=self.store_kind,
                            position=record.position, error=str(exc))
        await self._halt(writer, record, error)

    async def _commit(self, writer: ProjectionWriter, batch: list[Recorded]) -> None:
        events = [Projected(r, self.projection.changes(self._codec.upcast(r))) for r in batch]
        if any(e.changes for e in events) or self._before_checkpoint is not None:
            committed = await writer.commit(events, self._before_checkpoint)
        else:  # nothing for this projection in the batch (a blob event, for the users projection)
            committed = await writer.advance(events)
        self.state.position = max(self.state.position, committed.position)
        if self._metrics is not None and committed.applied:
            self._metrics.projection_events.labels(self.name, self.store_kind).inc(len(committed.applied))
            self._metrics.db_queries.labels("projection_batch").inc()
        if self._tracer is not None and committed.applied:
            span_for_batch(self._tracer, self._span_name, committed.applied)

    async def _halt(self, writer: ProjectionWriter, record: Recorded, error: BaseException | None) -> None:
        message = f"{type(error).__name__}: {error}" if error else "unknown error"
        await writer.halt(record.position, message)
        self.state.status = "halted"
        self.state.error = message
        self.state.error_position = record.position
        if self._metrics is not None:
            self._metrics.projection_halted.labels(self.name, self.store_kind).set(1)
        log.error("projector.halted", projection=self.name, store=self.store_kind, position=record.position,
                  error=message)
        raise ProjectionHalted(message)
