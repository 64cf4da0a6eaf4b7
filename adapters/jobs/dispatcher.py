"""The trigger dispatcher: blob events of a processor's owner request jobs by themselves.

``TriggerDispatcher.handle(records)`` is the subscriber: it sees every event
in log order, keeps an index of the processors (rebuilt from their own
events, so it knows each processor's triggers and version at every
position) and, for each matching blob change, requests exactly one job
(``commands.jobs.JobCommands.request_triggered``: the job id is derived from
the processor and the event's position and created with expected sequence
0, so a replayed or redelivered event requests nothing new). It also carries
the policy of ``DELETE /v1/processors/{id}``: a ``Processor.Deleted`` cancels
that processor's pending and running jobs.

Matching, for a processor of the blob's owner that is not deleted:

* ``blob.created`` is ``Blob.Created``; ``blob.updated`` is ``Blob.Updated``
  and ``Blob.Migrated`` (the data changed);
* a trigger's ``bucket_id`` must be one of the blob's buckets and its
  ``schema_id`` the blob's schema, as of that event;
* the processor's ``input_schema``, when it has one, must be the blob's
  schema (a trigger never requests a job its processor would refuse);
* a blob that a processor made (``source.processor_id``) never triggers that
  processor; any other processor's trigger runs at the output's ``depth`` + 1,
  and a job deeper than ``MAX_DEPTH`` fails with ``chain_too_deep``;
* the matches of one event share one budget, in processor id order
  (``domain.job.split_budget``): a user's own blob starts a chain with
  ``MAX_CHAIN_JOBS``, a job's output passes on what its job may still spawn
  (``source.budget``; an output of a job from before budgets:
  ``budget_left(None, depth)``). A match left without a share does not run:
  it is recorded (``OVER_BUDGET``; the runner fails it with
  ``chain_too_deep``, saying the chain's budget was spent) and logged
  (``triggers.budget_spent``), so every matching change still has its one job
  per processor, and a refusal, which writes no output, never fans out.

``DispatcherLoop`` drives it from the process's shared reader of the log
(``adapters.shared_log``) from position 1 (the index is rebuilt on every
start, reading on its own cursor until it reaches the shared window) and acts
only after its checkpoint (``subscriber_checkpoints``, saved after each
batch in which it acted, and otherwise at most once a second and when the log
goes quiet: acting again on an event is harmless, since every request is
derived from its event, so a checkpoint that trails by a second costs a
restart a second of re-reading and nothing else); one process acts at a time (a PostgreSQL advisory lock), others stand
by. Every write is a command through the bus, sent as the system.
"""

from __future__ import annotations

import asyncio
import contextlib
import zlib
from typing import Any

import asyncpg
import structlog

from adapters.cancellation import raise_if_cancelling
from adapters.postgres.pool import connect
from adapters.shared_log import SharedLog
from adapters.telemetry.metrics import Metrics
from adapters.telemetry.tracing import Tracing, extract
from adapters.work import Bill, billed
from commands.bus import CommandBus
from commands.jobs import POLICY_ACTOR, TRIGGER_ACTOR, CancelUnfinishedJobs, RequestTriggeredJob
from commands.ports import Unavailable
from commands.repository import Context, Repository
from domain.base import EventCodec
from domain.blob import Blob
from domain.ids import new_id
from domain.job import MAX_CHAIN_JOBS, OVER_BUDGET, budget_left, split_budget
from domain.processor import MAX_TRIGGERED_PROCESSORS, Processor
from domain.recorded import Recorded

log = structlog.get_logger("inkstream.triggers")

BLOB_EVENTS = {"Blob.Created": "blob.created", "Blob.Updated": "blob.updated", "Blob.Migrated": "blob.updated"}


def matches(processor: Processor, on: str, blob: dict[str, Any]) -> dict[str, Any] | None:
    """The first trigger of ``processor`` that ``blob`` (``{schema_id, bucket_ids, source}``) fires, if any."""
    if processor.deleted:
        return None
    if (blob.get("source") or {}).get("processor_id") == processor.id_str:
        return None  # a processor's own output never triggers it
    if processor.input_schema is not None and blob.get("schema_id") != processor.input_schema:
        return None
    for trigger in processor.triggers:
        if trigger["on"] != on:
            continue
        if trigger.get("bucket_id") is not None and trigger["bucket_id"] not in blob.get("bucket_ids", []):
            continue
        if trigger.get("schema_id") is not None and trigger["schema_id"] != blob.get("schema_id"):
            continue
        return trigger
    return None


def chain_budget(source: dict[str, Any] | None) -> int:
    """What the jobs a blob change triggers share: ``MAX_CHAIN_JOBS`` for a user's blob (it starts
    a chain), else what the job that made it may still spawn (``source.budget``, written by the
    runner; a blob from before budgets has none, and ``budget_left`` goes by its depth)."""
    if not source:
        return MAX_CHAIN_JOBS
    return budget_left(source.get("budget"), source.get("depth", 0))


class TriggerDispatcher:
    name = "triggers"

    def __init__(
        self,
        bus: CommandBus,
        repository: Repository,
        codec: EventCodec,
        *,
        metrics: Metrics | None = None,
        tracing: Tracing | None = None,
        bill: Bill | None = None,
    ) -> None:
        self._bus = bus
        self._repo = repository
        self._codec = codec
        self._metrics = metrics
        self._tracing = tracing
        self._bill = bill
        self._warned: set[str] = set()
        self._processors: dict[str, Processor] = {}
        self._by_owner: dict[str, set[str]] = {}
        self.position = 0  # the last event seen
        self.acted_through = 0  # events up to here were acted on before (a restart only re-reads them)
        self.requested = 0
        self.actions = 0  # jobs requested or cancelled (attempts included): what a checkpoint must cover

    def reset(self, acted_through: int) -> None:
        self._processors.clear()
        self._by_owner.clear()
        self.position = 0
        self.acted_through = acted_through

    async def handle(self, records: list[Recorded]) -> None:
        for record in records:
            if record.position <= self.position:
                continue
            act = record.position > self.acted_through
            if record.aggregate_type == Processor.TYPE:
                await self._processor_event(record, act)
            elif act and record.type in BLOB_EVENTS:
                await self._blob_event(record)
            self.position = record.position

    async def _processor_event(self, record: Recorded, act: bool) -> None:
        current = self._processors.get(record.aggregate_id)
        processor = self._codec.decode(record).mutate(current)
        assert isinstance(processor, Processor)
        self._processors[record.aggregate_id] = processor
        owned = self._by_owner.setdefault(processor.owner_id, set())
        if processor.deleted:
            owned.discard(processor.id_str)
            del self._processors[record.aggregate_id]
            if act:
                await self._cancel_jobs_of(processor, record.position)
        elif processor.triggers:
            owned.add(processor.id_str)
        else:
            owned.discard(processor.id_str)

    async def _cancel_jobs_of(self, processor: Processor, position: int) -> None:
        self.actions += 1
        command = CancelUnfinishedJobs(processor.id_str, position, "its processor was deleted")
        try:
            cancelled = await self._bus.handle(command, Context(POLICY_ACTOR, new_id()))
        except Unavailable as exc:
            # the runner cancels such a job itself when it reaches it
            log.warning("triggers.cancel_deferred", processor_id=processor.id_str, error=str(exc))
            return
        if cancelled and self._metrics is not None:
            self._metrics.jobs.labels(processor.type, "cancelled").inc(cancelled)

    async def _blob_event(self, record: Recorded) -> None:
        on = BLOB_EVENTS[record.type]
        if record.type == "Blob.Created":
            blob: dict[str, Any] = record.data
        else:
            if not any(t["on"] == on for p in self._processors.values() for t in p.triggers):
                return  # nobody listens to updates: no need to read the blob
            saved = await self._repo.get(Blob, record.aggregate_id, until_position=record.position)
            if saved is None:
                return
            found = saved.aggregate
            blob = {"owner_id": found.owner_id, "schema_id": found.schema_id, "bucket_ids": found.bucket_ids,
                    "source": found.source}
        source = blob.get("source") or {}
        depth = int(source.get("depth", 0)) + 1
        matched = [p for p in self._candidates(blob["owner_id"]) if matches(p, on, blob) is not None]
        if not matched:
            return
        pool = chain_budget(blob.get("source"))
        shares = split_budget(pool, len(matched))
        left_out = [p for p, share in zip(matched, shares) if share is None]
        if left_out:
            log.warning("triggers.budget_spent", blob_id=record.aggregate_id, position=record.position,
                        job_id=source.get("job_id"), budget=pool, matched=len(matched),
                        refused=[p.id_str for p in left_out])
        # Every match gets its one job, as the contract says; those left out of the budget are recorded
        # refused (their owner sees why), fail without running, and so trigger nothing: at most one per
        # matching processor of this one event.
        recorded = 0
        for processor, share in zip(matched, shares):
            recorded += await self._request(processor, record, on, depth, OVER_BUDGET if share is None else share)
        # charged to the writer as requests: the one dispatcher every user shares records these one by
        # one, and a change that fans out into many jobs costs everyone else's triggers that much waiting
        # (only jobs recorded now: an event read again after a restart requests, and costs, nothing new)
        await billed(self._bill, blob["owner_id"], recorded, "triggered jobs")

    def _candidates(self, owner_id: str) -> list[Processor]:
        """The owner's processors with triggers, by id: the first ``MAX_TRIGGERED_PROCESSORS`` (a user may
        register no more, though two registrations at once may both have passed the count)."""
        owned = sorted(self._by_owner.get(owner_id, ()))
        if len(owned) > MAX_TRIGGERED_PROCESSORS:
            if owner_id not in self._warned:  # once per owner and start, not with every blob change
                self._warned.add(owner_id)
                log.warning("triggers.too_many_processors", owner_id=owner_id, processors=len(owned),
                            heeded=MAX_TRIGGERED_PROCESSORS, ignored=owned[MAX_TRIGGERED_PROCESSORS:][:20])
            owned = owned[:MAX_TRIGGERED_PROCESSORS]
        return [self._processors[p] for p in owned]

    async def _request(self, processor: Processor, record: Recorded, on: str, depth: int, budget: int) -> bool:
        """Whether a job was recorded now (not already, by an earlier reading of the event)."""
        self.actions += 1
        trigger = {"on": on, "blob_id": record.aggregate_id, "position": record.position}
        parent = extract({"traceparent": record.traceparent or ""})
        span = self._tracing.span("trigger", parent, **{"ink.processor_id": processor.id_str}) if self._tracing else None
        command = RequestTriggeredJob(processor, {"id": record.aggregate_id, "version": record.version}, trigger,
                                      depth, record.position, budget)
        with span if span is not None else contextlib.nullcontext():
            saved = await self._bus.handle(command, Context(TRIGGER_ACTOR, new_id(), record.traceparent))
        if saved is None:
            return False
        self.requested += 1
        if self._metrics is not None:
            self._metrics.jobs.labels(processor.type, "pending").inc()
        return True


def _lock_key(name: str) -> int:
    return zlib.crc32(f"subscriber:{name}".encode())


class DispatcherLoop:
    """Feeds the dispatcher the log in order, from the shared reader, with a checkpoint in PostgreSQL."""

    def __init__(self, dispatcher: TriggerDispatcher, shared_log: SharedLog, dsn: str, *, batch_size: int = 500) -> None:
        self.dispatcher = dispatcher
        self._shared = shared_log
        self._dsn = dsn
        self._batch_size = batch_size
        self.status = "starting"

    async def run(self) -> None:
        delay = 0.1
        while True:
            raise_if_cancelling()
            try:
                await self._run_once()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - an outage (NATS, PostgreSQL): wait and start over
                self.status = "waiting"
                log.warning("triggers.outage", error=str(exc) or type(exc).__name__)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)

    async def _run_once(self) -> None:
        conn = await connect(self._dsn)
        try:
            while not await conn.fetchval("SELECT pg_try_advisory_lock($1)", _lock_key(self.dispatcher.name)):
                raise_if_cancelling()
                self.status = "standby"
                await asyncio.sleep(1.0)
            checkpoint = await self._checkpoint(conn)
            self.dispatcher.reset(checkpoint)
            self.status = "running"
            log.info("triggers.started", checkpoint=checkpoint)
            await self._consume(conn)
        finally:
            try:
                async with asyncio.timeout(2):
                    await conn.close()
            except Exception:  # noqa: BLE001
                conn.terminate()

    async def _checkpoint(self, conn: asyncpg.Connection) -> int:
        await conn.execute(
            "INSERT INTO subscriber_checkpoints (name) VALUES ($1) ON CONFLICT (name) DO NOTHING", self.dispatcher.name
        )
        return int(await conn.fetchval("SELECT position FROM subscriber_checkpoints WHERE name = $1",
                                       self.dispatcher.name))

    async def _consume(self, conn: asyncpg.Connection) -> None:
        follower = self._shared.follow(1, max_batch=self._batch_size)
        loop = asyncio.get_running_loop()
        saved, saved_at = self.dispatcher.acted_through, loop.time()
        try:
            while True:
                raise_if_cancelling()
                batch = await follower.next_batch()
                actions = self.dispatcher.actions
                if batch:
                    await self.dispatcher.handle(batch)
                position = self.dispatcher.position
                due = self.dispatcher.actions != actions or not batch or loop.time() - saved_at >= 1.0
                if position > max(saved, self.dispatcher.acted_through) and due:
                    await conn.execute(
                        "UPDATE subscriber_checkpoints SET position = $2, updated_at = now() WHERE name = $1",
                        self.dispatcher.name, position,
                    )  # fmt: skip
                    saved, saved_at = position, loop.time()
                elif not batch:
                    await conn.fetchval("SELECT 1")  # notice a dead connection while idle
        finally:
            await follower.close()
