"""The job runner: a durable pull consumer on ``ink.job.>`` shared by every runner process.

Each job's work message is the event that opened its current run
(``Job.Requested`` or ``Job.Retried``); every other job event that the
consumer delivers is acknowledged at once. The consumer (``streams.yaml``)
uses explicit acks, ``ack_wait`` as the crash-detection window, no
``max_deliver`` and no ``backoff``.

Why retries are decided from the log and not by the consumer: one consumer
serves every processor, so it cannot carry a processor's ``max_attempts``
or timeout. The runner counts the job's attempts in its current run against
the processor's ``max_attempts`` and schedules a retry with
``nak(delay=backoff)`` (exponential from ``INKSTREAM_JOB_RETRY_BACKOFF_SECONDS``);
a failure no retry can fix, or the last attempt's, is ``AckTerm``. For the
same reason ``ack_wait`` is not a processor's timeout: it is how long a
silent runner keeps a job before the consumer redelivers it, and a runner
that is alive heartbeats (``AckProgress``) every third of it, however long
its processor may run. The processor's own time limit is enforced here.

The log decides, not the consumer (``commands.job_runs``): before acting the
runner reads the job, and it records every transition as a command through
the bus. A message of an older run, or of a finished job, is
acknowledged and dropped. A ``pending`` job is started with the job's
expected sequence, so of two runners only one starts an attempt. A message
delivered while the log says ``running`` is a redelivery: the runner that
held it stopped heartbeating (it crashed, or lost NATS for longer than
``ack_wait``), so this runner takes the job over as a new attempt (an
abandoned attempt counts, so a processor that kills its runner cannot loop).
A consumer redelivers only after ``ack_wait`` without a heartbeat, so an
attempt that started less than ``ack_wait`` ago is not abandoned: such a
delivery is a duplicate, and the runner lets it go.
While a processor runs, the runner looks at the job's last event every
``watch_interval``: a ``Cancelled`` (a user, or the deleted-processor policy)
cancels the processor's task (the sandbox stops its script, the HTTP call is
closed) and discards the result; a newer ``Started`` means another runner
took over, and this one lets go without writing anything.

Fairness: at most ``max_running_per_user`` jobs of one user run at once
across every runner (this process's own count, plus the read model's
running jobs of that user in other processes). Each process holds a queue of
up to 256 messages per user and starts jobs round-robin across users; beyond that a
user's further messages are negatively acknowledged with a growing delay, so
the consumer moves on to other users' messages and one user's 10,000 jobs
cannot keep another's one waiting behind them.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import os
import socket
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Protocol

import orjson
import structlog
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.errors import Error as NatsError
from nats.errors import TimeoutError as NatsTimeoutError

from adapters.cancellation import raise_if_cancelling
from adapters.jobs.memory import MemoryBudget
from adapters.jobs.migrations import MIGRATION_EVENTS, MigrationExecutor, MigrationOptions
from adapters.processors.base import Output, ProcessorFailure, ProcessorType, RunContext
from adapters.processors.catalog import ProcessorCatalog
from adapters.telemetry.metrics import Metrics
from adapters.telemetry.tracing import Tracing, extract
from adapters.work import Bill, billed
from commands.bus import CommandBus
from commands.job_runs import (
    CompleteJob,
    DiscardOutput,
    FailJob,
    JobReads,
    RecordAttemptFailure,
    Stale,
    StartAttempt,
    StopJob,
    WriteOutput,
    runner_actor,
)
from commands.migrations import MigrationReads
from commands.ports import Sandbox, Unavailable
from commands.repository import Context
from domain.errors import DomainError, FieldError, ValidationFailed
from domain.ids import new_id
from domain.job import CANCELLED, MAX_CHAIN_JOBS, MAX_DEPTH, RUNNING, Job, job_error
from domain.limits import encoded_size
from domain.processor import Processor

log = structlog.get_logger("inkstream.jobs")

WORK_EVENTS = frozenset({"Job.Requested", "Job.Retried"}) | MIGRATION_EVENTS


class Outcome(enum.Enum):
    ACK = "ack"  # done with this message (a final outcome, or nothing to do)
    TERM = "term"  # a final failure: never redeliver
    NAK = "nak"  # try again after ``delay``
    LET_GO = "let_go"  # another runner holds this job now: neither ack nor nak


@dataclass
class Work:
    msg: Msg
    job_id: str
    run: int
    """Which run of the job the message asks for (a retry is a new run); for a migration run's revert,
    which request of the revert (``Migration.RevertRequested``'s ``run``)."""
    owner_id: str
    traceparent: str | None
    kind: str = "Job.Requested"


@dataclass
class _Running:
    work: Work
    task: asyncio.Task[None]


class RunningElsewhere(Protocol):
    """A user's running jobs as the read model knows them (every runner's)."""

    async def running_job_ids(self, owner_id: str) -> set[str]: ...


@dataclass(frozen=True)
class RunnerOptions:
    concurrency: int = 8
    max_running_per_user: int = 4
    ack_wait: float = 30.0
    retry_backoff: float = 1.0
    retry_backoff_max: float = 60.0
    queue_per_user: int = 256
    watch_interval: float = 0.5
    elsewhere_ttl: float = 0.5
    shutdown_grace: float = 5.0
    memory_budget_mb: int = 2048
    """The memory limits (``max_memory_mb``) of the jobs running at once, summed (``jobs/memory.py``)."""
    stream: str = "INK"
    consumer: str = "jobs"


def default_runner_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{new_id()[-8:]}"


class _Cancelled(Exception):
    """The job was cancelled while its processor ran."""


class _TakenOver(Exception):
    """Another runner started a newer attempt while this one ran."""


@dataclass
class _Fairness:
    """Per-user queues and round-robin order of this process."""

    queues: dict[str, deque[Work]] = field(default_factory=dict)
    order: deque[str] = field(default_factory=deque)

    def add(self, work: Work) -> None:
        queue = self.queues.get(work.owner_id)
        if queue is None:
            queue = self.queues[work.owner_id] = deque()
            self.order.append(work.owner_id)
        queue.append(work)

    def queued(self, owner_id: str) -> int:
        queue = self.queues.get(owner_id)
        return len(queue) if queue else 0

    def holds(self, job_id: str) -> bool:
        return any(w.job_id == job_id for q in self.queues.values() for w in q)

    def __iter__(self) -> Any:
        return (w for q in self.queues.values() for w in q)

    def __len__(self) -> int:
        return sum(len(q) for q in self.queues.values())

    def drop_empty(self) -> None:
        for owner in [o for o, q in self.queues.items() if not q]:
            del self.queues[owner]
            self.order.remove(owner)


class JobRunner:
    def __init__(
        self,
        nc: Client,
        bus: CommandBus,
        reads: JobReads,
        catalog: ProcessorCatalog,
        options: RunnerOptions | None = None,
        *,
        runner_id: str | None = None,
        metrics: Metrics | None = None,
        tracing: Tracing | None = None,
        elsewhere: RunningElsewhere | None = None,
        migrations: MigrationReads | None = None,
        sandbox: Sandbox | None = None,
        migration_options: MigrationOptions | None = None,
        bill_written: Bill | None = None,
    ) -> None:
        self._nc = nc
        self._bill_written = bill_written
        self._js = nc.jetstream()
        self._bus = bus
        self._runs = reads
        self._catalog = catalog
        self._options = options or RunnerOptions()
        self._metrics = metrics
        self._tracing = tracing
        self._elsewhere = elsewhere
        self._fair = _Fairness()
        self._memory = MemoryBudget(self._options.memory_budget_mb)
        self._running: dict[str, _Running] = {}
        self._recently_done: dict[str, float] = {}
        self._elsewhere_cache: dict[str, tuple[float, set[str]]] = {}
        self._wake = asyncio.Event()
        self._room = asyncio.Event()
        self._stopping = False
        self.runner_id = runner_id or default_runner_id()
        self.actor = runner_actor(self.runner_id)
        self.completed = 0  # outcomes recorded by this runner, for tests and logs
        self.failed = 0
        self._migrations = (
            MigrationExecutor(migrations, sandbox, self._record_in, self._durably,
                              migration_options or MigrationOptions(ack_wait=self._options.ack_wait), metrics,
                              bill_written=bill_written)
            if migrations is not None and sandbox is not None else None
        )

    # -- lifecycle -------------------------------------------------------------------------------

    async def run(self) -> None:
        """Consume until cancelled; on the way out, running jobs get a short grace, then their
        messages go back to the consumer for another runner."""
        sub = await self._subscribe()
        log.info("jobs.runner_started", runner=self.runner_id, concurrency=self._options.concurrency)
        tasks = [
            asyncio.create_task(self._fetch(sub), name="jobs-fetch"),
            asyncio.create_task(self._schedule_loop(), name="jobs-schedule"),
            asyncio.create_task(self._heartbeat(), name="jobs-heartbeat"),
            asyncio.create_task(self._gauges(), name="jobs-gauges"),
        ]
        try:
            await asyncio.gather(*tasks)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await self._shutdown()
            with contextlib.suppress(Exception):
                await sub.unsubscribe()

    async def _subscribe(self) -> Any:
        delay = 0.2
        while True:
            try:
                return await self._js.pull_subscribe_bind(self._options.consumer, self._options.stream)
            except Exception as exc:  # noqa: BLE001 - NATS down or the consumer not applied yet
                raise_if_cancelling()
                log.warning("jobs.subscribe_failed", error=str(exc) or type(exc).__name__)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)

    async def _shutdown(self) -> None:
        self._stopping = True
        running = [r.task for r in self._running.values()]
        if running:
            _, late = await asyncio.wait(running, timeout=self._options.shutdown_grace)
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)
        for work in list(self._fair):
            await self._reply(work.msg, Outcome.NAK, 0)  # back to the consumer, for another runner
        self._fair = _Fairness()

    # -- intake ------------------------------------------------------------------------------------

    def _held(self) -> int:
        return len(self._fair) + len(self._running)

    async def _fetch(self, sub: Any) -> None:
        limit = self._options.concurrency + self._options.queue_per_user * 4
        while True:
            raise_if_cancelling()
            room = limit - self._held()
            if room <= 0:
                self._room.clear()
                await self._room.wait()
                continue
            try:
                msgs = await sub.fetch(min(room, 64), timeout=1.0)
            except NatsTimeoutError:
                continue
            except (NatsError, OSError, asyncio.TimeoutError) as exc:
                log.debug("jobs.fetch_failed", error=str(exc) or type(exc).__name__)
                await asyncio.sleep(0.5)
                continue
            for msg in msgs:
                await self._admit(msg)
            self._wake.set()

    async def _admit(self, msg: Msg) -> None:
        headers = msg.headers or {}
        if headers.get("Ink-Type") not in WORK_EVENTS:
            await self._reply(msg, Outcome.ACK)
            return
        try:
            data = orjson.loads(msg.data)
            work = Work(msg, msg.subject.split(".", 2)[2], int(data.get("run", 1)), str(data["owner_id"]),
                        headers.get("traceparent"), headers["Ink-Type"])
        except (ValueError, KeyError, IndexError, TypeError):
            log.error("jobs.unreadable_message", subject=msg.subject)
            await self._reply(msg, Outcome.TERM)
            return
        if work.job_id in self._running or self._fair.holds(work.job_id):
            return  # a redelivery of a message this process holds: keep the one we have
        if self._fair.queued(work.owner_id) >= self._options.queue_per_user:
            await self._reply(msg, Outcome.NAK, self._requeue_delay(msg))
            return
        self._fair.add(work)

    def _requeue_delay(self, msg: Msg) -> float:
        """A user over their share waits longer each time their message comes back."""
        delivered = msg.metadata.num_delivered if msg.metadata else 1
        return min(0.25 * 2 ** min(delivered - 1, 8), 30.0)

    # -- scheduling --------------------------------------------------------------------------------

    async def _schedule_loop(self) -> None:
        while True:
            raise_if_cancelling()
            await self._wake.wait()
            self._wake.clear()
            await self._schedule()

    async def _schedule(self) -> None:
        while len(self._running) < self._options.concurrency and not self._stopping:
            picked: Work | None = None
            for _ in range(len(self._fair.order)):
                owner = self._fair.order[0]
                self._fair.order.rotate(-1)
                queue = self._fair.queues.get(owner)
                if not queue:
                    continue
                if await self._running_for(owner, queue[0].job_id) >= self._options.max_running_per_user:
                    continue
                picked = queue.popleft()
                break
            self._fair.drop_empty()
            if picked is None:
                return
            self._start(picked)

    async def _running_for(self, owner_id: str, candidate: str) -> int:
        """What the owner runs now, on every runner, besides ``candidate``: a job or a run whose runner
        died is still ``running`` in the read model when it comes back, and must not hold its own slot."""
        mine = {job_id for job_id, r in self._running.items() if r.work.owner_id == owner_id}
        others: set[str] = set()
        if self._elsewhere is not None:
            now = time.monotonic()
            cached = self._elsewhere_cache.get(owner_id)
            if cached is None or now - cached[0] > self._options.elsewhere_ttl:
                try:
                    cached = (now, await self._elsewhere.running_job_ids(owner_id))
                except Exception as exc:  # noqa: BLE001 - the read model is down: count our own
                    log.debug("jobs.running_elsewhere_unknown", error=str(exc) or type(exc).__name__)
                    cached = (now, set())
                self._elsewhere_cache[owner_id] = cached
            recent = {j for j, at in self._recently_done.items() if now - at < 5.0}
            others = cached[1] - mine - recent - {candidate}
        return len(mine) + len(others)

    def _start(self, work: Work) -> None:
        task = asyncio.create_task(self._execute(work), name=f"job-{work.job_id}")
        self._running[work.job_id] = _Running(work, task)

        def done(_: asyncio.Task[None]) -> None:
            self._running.pop(work.job_id, None)
            now = time.monotonic()
            self._recently_done[work.job_id] = now
            for job_id in [j for j, at in self._recently_done.items() if now - at > 10.0]:
                del self._recently_done[job_id]
            self._wake.set()
            self._room.set()

        task.add_done_callback(done)

    # -- heartbeats and gauges -------------------------------------------------------------------

    async def _heartbeat(self) -> None:
        """``AckProgress`` for every message this process holds, queued or running."""
        interval = max(self._options.ack_wait / 3, 0.2)
        while True:
            raise_if_cancelling()
            await asyncio.sleep(interval)
            held = [r.work.msg for r in self._running.values()] + [w.msg for w in self._fair]
            for msg in held:
                with contextlib.suppress(Exception):
                    await msg.in_progress()

    async def _gauges(self) -> None:
        if self._metrics is None:
            return
        while True:
            raise_if_cancelling()
            with contextlib.suppress(Exception):
                info = await self._js.consumer_info(self._options.stream, self._options.consumer)
                self._metrics.jobs_queue.labels("undelivered").set(info.num_pending or 0)
                self._metrics.jobs_queue.labels("unacknowledged").set(info.num_ack_pending or 0)
            await asyncio.sleep(5.0)

    def _count(self, processor_type: str, status: str) -> None:
        if self._metrics is not None:
            self._metrics.jobs.labels(processor_type, status).inc()

    # -- one job -------------------------------------------------------------------------------------

    async def _execute(self, work: Work) -> None:
        parent = extract({"traceparent": work.traceparent or ""})
        span = self._tracing.span("job.run", parent, **{"ink.job_id": work.job_id}) if self._tracing else None
        outcome, delay = Outcome.NAK, 5.0
        try:
            with span if span is not None else contextlib.nullcontext():
                if work.kind in MIGRATION_EVENTS:
                    outcome, delay = await self._process_migration(work)
                else:
                    outcome, delay = await self._process(work)
        except asyncio.CancelledError:
            outcome, delay = Outcome.NAK, 0.0  # shutting down: another runner takes it over
            await self._reply(work.msg, outcome, delay)
            raise
        except Exception:  # noqa: BLE001 - a bug must not lose the message
            log.exception("jobs.runner_error", job_id=work.job_id)
            outcome, delay = Outcome.NAK, 5.0
        await self._reply(work.msg, outcome, delay)

    async def _reply(self, msg: Msg, outcome: Outcome, delay: float = 0.0) -> None:
        try:
            if outcome is Outcome.ACK:
                await msg.ack()
            elif outcome is Outcome.TERM:
                await msg.term()
            elif outcome is Outcome.NAK:
                await msg.nak(delay=delay if delay > 0 else None)
        except Exception as exc:  # noqa: BLE001 - NATS gone: the consumer redelivers after ack_wait
            log.debug("jobs.reply_failed", outcome=outcome.value, error=str(exc) or type(exc).__name__)

    async def _record(self, command: Any) -> Any:
        """One transition through the bus, retried while the log is unreachable under one command id."""
        ctx = Context(self.actor, new_id())
        return await self._durably(lambda: self._bus.handle(command, ctx))

    async def _record_in(self, command: Any, ctx: Context | None) -> Any:
        """``_record`` under a given context (a derived command id) when there is one."""
        if ctx is None:
            return await self._record(command)
        return await self._durably(lambda: self._bus.handle(command, ctx))

    async def _process_migration(self, work: Work) -> tuple[Outcome, float]:
        """A migration run or its revert (``adapters/jobs/migrations.py``)."""
        if self._migrations is None:
            return Outcome.NAK, 5.0  # this runner cannot run migrations: another may
        answer = await self._migrations.process(work.job_id, work.kind, self.runner_id, self.actor, work.run)
        return Outcome(answer), 0

    async def _durably(self, action: Callable[[], Awaitable[Any]]) -> Any:
        """Retry ``action`` while the log is unreachable (same command ids, so it lands once)."""
        delay = 0.1
        while True:
            try:
                return await action()
            except Unavailable:
                if self._stopping:
                    raise
                raise_if_cancelling()
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)

    async def _process(self, work: Work) -> tuple[Outcome, float]:
        saved = await self._durably(lambda: self._runs.job(work.job_id))
        if saved is None or saved.aggregate.run != work.run or saved.aggregate.finished:
            return Outcome.ACK, 0
        job = saved.aggregate
        now = await self._durably(lambda: self._runs.processor_now(job.processor_id))
        if now is None or now.deleted:
            with contextlib.suppress(DomainError):
                await self._record(StopJob(job.id_str, "its processor was deleted"))
                self._count(job.processor_type, "cancelled")
            return Outcome.ACK, 0
        if job.chain_too_deep:
            error = job_error("chain_too_deep", f"a chain of triggered jobs stops at depth {MAX_DEPTH}; this job "
                                                f"would be at depth {job.depth}")
            return await self._final_failure(job, error, None)
        if job.over_budget:
            error = job_error("chain_too_deep", f"the chain's budget was spent: a chain of triggered jobs runs at "
                                                f"most {MAX_CHAIN_JOBS} jobs and none was left for this one; the "
                                                f"processors after it that the same blob change matched were not "
                                                f"requested")
            return await self._final_failure(job, error, None)
        processor = await self._durably(lambda: self._runs.processor_at(job.processor_id, job.processor_version))
        assert processor is not None
        if job.status == RUNNING and _age(job) < self._options.ack_wait:
            return Outcome.LET_GO, 0  # its runner holds it (a duplicate delivery): not abandoned yet
        if job.status == RUNNING and job.run_attempts >= processor.limits["max_attempts"]:
            error = job_error("internal", f"attempt {job.attempts} stopped answering (its runner was lost) and "
                                          f"all {processor.limits['max_attempts']} attempts are used")
            return await self._final_failure(job, error, None)
        try:
            started = await self._record(StartAttempt(job.id_str, work.run, self.runner_id,
                                                      takeover=job.status == RUNNING))
        except Stale:
            return Outcome.ACK, 0
        except DomainError:
            return await self._after_conflict(job.id_str, work.run)
        job = started.aggregate
        attempt = job.attempts
        self._count(processor.type, "running")
        return await self._attempt(job, attempt, processor)

    async def _attempt(self, job: Job, attempt: int, processor: Processor) -> tuple[Outcome, float]:
        kind = self._catalog.get(processor.type)
        if kind is None:
            error = job_error("internal", f"this runner has no processor type {processor.type!r} installed")
            return await self._final_failure(job, error, attempt)
        source = await self._durably(lambda: self._runs.input_at(job.input_blob_id, job.input_version))
        if source is None:
            return await self._final_failure(job, job_error("internal", "the input blob is not in the log"), attempt)
        began = time.perf_counter()
        gauge = self._metrics.jobs_running.labels(processor.type) if self._metrics else None
        if gauge is not None:
            gauge.inc()
        try:
            output: Output | None = await self._watched(job, attempt, processor, kind, source.data)
            failure: ProcessorFailure | None = None
        except ProcessorFailure as exc:
            output, failure = None, exc
        except _Cancelled:
            self._observe(processor.type, "cancelled", began)
            return Outcome.ACK, 0
        except _TakenOver:
            return Outcome.LET_GO, 0
        finally:
            if gauge is not None:
                gauge.dec()
        if output is not None:
            try:
                return await self._complete(job, attempt, processor, output, began)
            except ValidationFailed as exc:
                failure = ProcessorFailure("invalid_output", _summary(exc), retryable=False)
        assert failure is not None
        self._observe(processor.type, "failed_attempt", began)
        return await self._failed_attempt(job, attempt, processor, failure)

    async def _watched(self, job: Job, attempt: int, processor: Processor, kind: ProcessorType, data: Any) -> Output:
        """Run the processor within its time limit, watching the log for a cancel or a takeover."""
        timeout = float(processor.limits["timeout_seconds"])
        schema = processor.output_schema

        async def validate(document: Any) -> list[FieldError]:
            return [] if schema is None else await self._runs.validate_output(schema, document)

        memory_mb = int(processor.limits["max_memory_mb"])
        ctx = RunContext(job.id_str, attempt, timeout, memory_mb, schema, validate)
        # a sandboxed run waits for room in the runner's memory budget (not against its time limit),
        # watching for a cancel or a takeover meanwhile as it does while it runs
        held = await self._room_for(job, attempt, memory_mb) if getattr(kind, "sandboxed", False) else 0
        try:
            return await self._run_within(job, attempt, kind, processor.config, data, ctx)
        finally:
            if held:
                self._memory.release(job.owner_id, held)

    async def _room_for(self, job: Job, attempt: int, memory_mb: int) -> int:
        acquiring = asyncio.create_task(self._memory.acquire(job.owner_id, memory_mb))
        try:
            while True:
                done, _ = await asyncio.wait({acquiring}, timeout=self._options.watch_interval)
                if acquiring in done:
                    return acquiring.result()
                await self._check_still_ours(job.id_str, attempt)
        except BaseException:
            acquiring.cancel()
            await asyncio.gather(acquiring, return_exceptions=True)
            if not acquiring.cancelled() and acquiring.exception() is None:
                self._memory.release(job.owner_id, acquiring.result())  # granted just as it gave up
            raise

    async def _run_within(self, job: Job, attempt: int, kind: ProcessorType, config: dict[str, Any], data: Any,
                          ctx: RunContext) -> Output:
        timeout = ctx.timeout_seconds
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout + 0.5  # the sandbox's own limit, when it has one, reports first
        task = asyncio.create_task(kind.run(config, data, ctx))
        try:
            while True:
                left = deadline - loop.time()
                done, _ = await asyncio.wait({task}, timeout=max(0.0, min(self._options.watch_interval, left)))
                if task in done:
                    try:
                        return task.result()
                    except ProcessorFailure:
                        raise
                    except Exception as exc:  # noqa: BLE001 - a processor's bug is an internal, retried failure
                        raise ProcessorFailure("internal", f"{type(exc).__name__}: {exc}") from exc
                if loop.time() >= deadline:
                    raise ProcessorFailure("timeout", f"the processor ran longer than {timeout:g} s")
                await self._check_still_ours(job.id_str, attempt)
        finally:
            if not task.done():
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)

    async def _check_still_ours(self, job_id: str, attempt: int) -> None:
        """Raise when the job is no longer this attempt's: cancelled, or moved on (another runner
        started a newer attempt, or recorded an outcome). Attempts only grow, so the job is still ours
        exactly while it is running with this attempt."""
        try:
            job = await self._runs.job_now(job_id)
        except Unavailable:
            return  # cannot tell now; the next look may
        if job is None:
            return
        if job.status == CANCELLED:
            raise _Cancelled()
        if job.status != RUNNING or job.attempts != attempt:
            raise _TakenOver()

    async def _complete(
        self, job: Job, attempt: int, processor: Processor, output: Output, began: float
    ) -> tuple[Outcome, float]:
        blob = await self._record(WriteOutput(job, processor, output.data))
        blob_id = blob.aggregate.id_str
        # what the output adds to the log counts against its owner's written bytes, as a body would: a
        # 100-byte job request may write half a megabyte
        if blob.written:
            await billed(self._bill_written, job.owner_id, encoded_size(output.data), "job output")
        try:
            await self._record(CompleteJob(job.id_str, attempt, blob_id, output.engine))
        except DomainError:
            saved = await self._durably(lambda: self._runs.job(job.id_str))
            current = saved.aggregate if saved else None
            if current is not None and current.status == "completed" and current.output_blob_id == blob_id:
                return Outcome.ACK, 0
            if current is not None and current.status == "cancelled":
                # cancelled while the output was written: the result is discarded
                await self._record(DiscardOutput(blob_id))
                self._observe(processor.type, "cancelled", began)
                return Outcome.ACK, 0
            return Outcome.LET_GO, 0
        self.completed += 1
        self._count(processor.type, "completed")
        self._observe(processor.type, "completed", began)
        return Outcome.ACK, 0

    async def _failed_attempt(
        self, job: Job, attempt: int, processor: Processor, failure: ProcessorFailure
    ) -> tuple[Outcome, float]:
        error = job_error(failure.code, failure.message)
        run_attempts = attempt - job.run_base
        if failure.retryable and run_attempts < processor.limits["max_attempts"]:
            delay = min(self._options.retry_backoff * 2 ** (run_attempts - 1), self._options.retry_backoff_max)
            try:
                await self._record(RecordAttemptFailure(job.id_str, attempt, error, delay))
            except DomainError:
                return await self._after_conflict(job.id_str, job.run)
            self._count(processor.type, "retrying")
            log.info("jobs.attempt_failed", job_id=job.id_str, attempt=attempt, code=error["code"], retry_in=delay)
            return Outcome.NAK, delay
        return await self._final_failure(job, error, attempt)

    async def _final_failure(self, job: Job, error: dict[str, str], attempt: int | None) -> tuple[Outcome, float]:
        try:
            await self._record(FailJob(job.id_str, error, attempt))
        except DomainError:
            return await self._after_conflict(job.id_str, job.run)
        self.failed += 1
        self._count(job.processor_type, "failed")
        log.info("jobs.failed", job_id=job.id_str, attempt=attempt, code=error["code"], message=error["message"][:200])
        return Outcome.TERM, 0

    async def _after_conflict(self, job_id: str, run: int) -> tuple[Outcome, float]:
        """The job changed under this runner: finished or another run → ack; else another runner has it."""
        saved = await self._durably(lambda: self._runs.job(job_id))
        if saved is None or saved.aggregate.finished or saved.aggregate.run != run:
            return Outcome.ACK, 0
        return Outcome.LET_GO, 0

    def _observe(self, processor_type: str, outcome: str, began: float) -> None:
        if self._metrics is not None:
            self._metrics.job_duration.labels(processor_type, outcome).observe(time.perf_counter() - began)


def _age(job: Job) -> float:
    """Seconds since the job's last event (for a running job: its ``Started``), by this machine's clock."""
    return (datetime.now(timezone.utc) - job.modified_on).total_seconds()


def _summary(exc: ValidationFailed) -> str:
    errors = "; ".join(f"{e.path or '/'}: {e.message}" for e in exc.errors[:5])
    return f"{exc.reason}: {errors}" if errors else exc.reason
