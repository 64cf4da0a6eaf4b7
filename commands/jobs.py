"""Job commands of users and of the policies that react to the log.

Users request, cancel and retry their jobs; everything a request depends on
is checked first (the processor and the blob are the actor's, live, and the
blob has the processor's input schema and suits its type), so a refused
request writes nothing.

Policies act as the system: the trigger dispatcher requests a job for a
matching blob event under an id derived from the processor and the event's
position (created with expected sequence 0, so a replayed or redelivered
event requests nothing new) with the share of the chain's budget the
dispatcher gave it (``domain.job.split_budget``; ``OVER_BUDGET`` records a
job the budget did not cover, which fails without running), and a deleted processor's unfinished jobs are
cancelled one by one. The log decides every transition: a job that moved on
meanwhile refuses, and the policy lets it be.
"""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from domain.blob import Blob
from domain.errors import Conflict, ConcurrencyError, DomainError, NotFound, ValidationFailed, invalid
from domain.ids import hashed_id, is_id
from domain.job import FAILED, FULL_BUDGET, PENDING, RUNNING, Job
from domain.processor import Processor

from commands.authorization import changeable, require_actor
from commands.bus import Handler
from commands.ports import JobFinder, ProcessorTypes
from commands.processors import owned_processor
from commands.repository import Context, Repository, Saved

TRIGGER_ACTOR = "system:triggers"
POLICY_ACTOR = "system:policies"


def triggered_job_id(processor_id: str, position: int) -> UUID:
    """The one job a matching event at ``position`` may request of ``processor_id``."""
    return hashed_id("job-trigger", f"{processor_id}:{position}")


@dataclass(frozen=True, slots=True)
class RequestJob:
    processor_id: str
    input_blob_id: str


@dataclass(frozen=True, slots=True)
class CancelJob:
    job_id: str


@dataclass(frozen=True, slots=True)
class RetryJob:
    job_id: str


@dataclass(frozen=True, slots=True)
class RetryFailedJobs:
    processor_id: str


@dataclass(frozen=True, slots=True)
class RequestTriggeredJob:
    """A policy's command: ``processor`` as of the triggering event, ``blob`` ``{id, version}``;
    ``budget`` the job's share of its chain's budget (``OVER_BUDGET``: it is recorded only to say
    the budget was spent)."""

    processor: Processor
    blob: dict[str, Any]
    trigger: dict[str, Any]
    depth: int
    position: int
    budget: int


@dataclass(frozen=True, slots=True)
class CancelUnfinishedJobs:
    """A policy's command: every pending or running job of a processor deleted at ``position``."""

    processor_id: str
    position: int
    reason: str


@dataclass(frozen=True, slots=True)
class BulkRetry:
    retried: int
    position: int


class JobHandlers:
    def __init__(self, repository: Repository, types: ProcessorTypes, finder: JobFinder) -> None:
        self._repo = repository
        self._types = types
        self._finder = finder

    def handlers(self) -> dict[type, Handler]:
        return {RequestJob: self.request, CancelJob: self.cancel, RetryJob: self.retry,
                RetryFailedJobs: self.retry_failed, RequestTriggeredJob: self.request_triggered,
                CancelUnfinishedJobs: self.cancel_unfinished}

    # -- users -------------------------------------------------------------------------

    async def request(self, cmd: RequestJob, ctx: Context) -> Saved[Job]:
        owner_id = require_actor(ctx.actor)
        processor_id, input_blob_id = cmd.processor_id, cmd.input_blob_id
        processor = (await owned_processor(self._repo, ctx, processor_id)).aggregate
        if not is_id(input_blob_id):
            raise NotFound(f"blob {input_blob_id}")
        saved = await self._repo.get(Blob, input_blob_id)
        blob = changeable(ctx.actor, "blob", input_blob_id, saved.aggregate if saved else None, None)
        if processor.input_schema is not None and blob.schema_id != processor.input_schema:
            raise invalid("/input_blob_id", f"the blob's schema {blob.schema_id or '(none)'} is not the processor's "
                                            f"input schema {processor.input_schema}")
        errors = self._types.check_input(processor.type, processor.config, blob.data)
        if errors:
            raise ValidationFailed(f"the blob cannot be input to a {processor.type} processor", errors)
        return await self._repo.execute(
            Job,
            None,
            lambda _: Job.request(owner_id, processor_id, processor.version, processor.type, input_blob_id,
                                  blob.version, budget=FULL_BUDGET),  # a user's job starts a chain
            ctx,
        )

    async def cancel(self, cmd: CancelJob, ctx: Context) -> Saved[Job]:
        job_id = cmd.job_id
        if not is_id(job_id):
            raise NotFound(f"job {job_id}")

        def decide(current: Job | None) -> Job:
            job = changeable(ctx.actor, "job", job_id, current, None)
            job.cancel()
            return job

        return await self._repo.execute(Job, job_id, decide, ctx)

    async def retry(self, cmd: RetryJob, ctx: Context) -> Saved[Job]:
        job_id = cmd.job_id
        if not is_id(job_id):
            raise NotFound(f"job {job_id}")

        async def decide(current: Job | None) -> Job:
            job = changeable(ctx.actor, "job", job_id, current, None)
            await self._ensure_processor_live(job)
            job.retry()
            return job

        return await self._repo.execute(Job, job_id, decide, ctx)

    async def _ensure_processor_live(self, job: Job) -> None:
        processor = await self._repo.get(Processor, job.processor_id)
        if processor is None or processor.aggregate.deleted:
            raise Conflict(f"job {job.id_str} cannot run again: its processor was deleted")

    async def retry_failed(self, cmd: RetryFailedJobs, ctx: Context) -> BulkRetry:
        """Every failed job of the actor's processor, each retried through the log (one event per job).

        The set comes from the read model once it has reached the log's
        current position; a job that moved on meanwhile is left alone. A retry
        of this request (same Idempotency-Key) retries each job at most once.
        """
        processor_id = cmd.processor_id
        await owned_processor(self._repo, ctx, processor_id)
        target = await self._repo.last_position()
        job_ids = await self._finder.job_ids(processor_id, (FAILED,), target)
        positions: list[int] = []
        gate = asyncio.Semaphore(16)

        async def one(job_id: str) -> None:
            sub = Context(ctx.actor, _derived(ctx.command_id, job_id), ctx.traceparent, fresh=ctx.fresh)

            def decide(current: Job | None) -> Job:
                job = changeable(ctx.actor, "job", job_id, current, None)
                job.retry()
                return job

            async with gate:
                try:
                    positions.append((await self._repo.execute(Job, job_id, decide, sub)).position)
                except (Conflict, NotFound):
                    pass  # retried or changed meanwhile

        await asyncio.gather(*(one(j) for j in job_ids))
        return BulkRetry(len(positions), max(positions, default=target))

    # -- policies (the system acts) ------------------------------------------------------

    async def request_triggered(self, cmd: RequestTriggeredJob, ctx: Context) -> Saved[Job] | None:
        """The job a matching blob event requests (None when that event already did).

        The policy sends it with a fresh command id: a second request must meet the
        expected-sequence check and be refused, not be answered as a duplicate of the
        first (which would look like a new job).
        """
        processor, blob, trigger, depth, budget = cmd.processor, cmd.blob, cmd.trigger, cmd.depth, cmd.budget
        job_id = triggered_job_id(processor.id_str, cmd.position)
        try:
            return await self._repo.execute(
                Job,
                None,
                lambda _: Job.request(processor.owner_id, processor.id_str, processor.version, processor.type,
                                      blob["id"], blob["version"], trigger, depth, budget, job_id=job_id),
                ctx,
            )
        except ConcurrencyError:
            return None  # requested before (a replay or a redelivery of the event)

    async def cancel_unfinished(self, cmd: CancelUnfinishedJobs, ctx: Context) -> int:
        """Cancel the processor's pending and running jobs; the number cancelled."""
        processor_id, position, reason = cmd.processor_id, cmd.position, cmd.reason
        job_ids = await self._finder.job_ids(processor_id, (PENDING, RUNNING), position)
        cancelled = 0
        for job_id in job_ids:

            def decide(current: Job | None) -> Job:
                if current is None:
                    raise NotFound(f"job {job_id}")
                current.cancel(reason)
                return current

            try:
                await self._repo.execute(Job, job_id, decide, Context(ctx.actor, f"cancel-{job_id}-{position}",
                                                                      ctx.traceparent))
                cancelled += 1
            except DomainError:
                pass  # finished meanwhile
        return cancelled


def _derived(command_id: str, job_id: str) -> str:
    return "bulk-" + hashlib.sha256(f"{command_id}\x00{job_id}".encode()).hexdigest()[:40]
