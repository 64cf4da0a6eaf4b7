"""What a job runner records, through the log, and what it reads first.

The runner never trusts its message: it reads the job (``JobReads``), and
every transition is a command (``JobRunHandlers``, through the bus) appended
with the job's expected sequence, so of two runners that race on one job
exactly one starts each attempt and exactly one outcome lands. A runner's
command ids are fresh per action and reused only when the same action is
retried after the log was unreachable (then the append lands once).

The output blob's id is derived from the job and its run, and the blob is
created with expected sequence 0: two runners that both got as far as
writing it produce one blob, and the slower one finds it and uses it. Its
``source`` says where it came from, with the job's depth and what the
chain's budget still allows below the job (``Job.spawn_budget``), which
the trigger dispatcher splits over the processors the blob triggers.

A processor at a version and a blob at a version never change, so the reads
keep the last few (a batch of jobs usually shares its processor, often its
input).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from domain.base import InkAggregate
from domain.blob import Blob
from domain.errors import ConcurrencyError, Conflict, DomainError, FieldError, NotFound
from domain.ids import hashed_id
from domain.job import RUNNING, Job
from domain.limits import Limits
from domain.processor import Processor

from commands.bus import Handler
from commands.repository import Context, Repository, Saved
from commands.schemas import SchemaRegistry


def output_blob_id(job_id: str, run: int) -> UUID:
    """The one output blob a run of a job may create."""
    return hashed_id("job-output", f"{job_id}:{run}")


def runner_actor(runner_id: str) -> str:
    return f"system:runner/{runner_id}"


class Stale(Exception):
    """The job moved on (finished, or into another run) before this runner started it."""

    def __init__(self, job: Job | None) -> None:
        self.job = job
        super().__init__(f"job {job.id_str if job else '?'} moved on")


# -- commands ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StartAttempt:
    """The next attempt of ``run``. ``takeover``: the runner found the job running and abandoned,
    and starts over it; without it, a job another runner started meanwhile is refused (Conflict)."""

    job_id: str
    run: int
    runner: str
    takeover: bool = False


@dataclass(frozen=True, slots=True)
class RecordAttemptFailure:
    job_id: str
    attempt: int
    error: dict[str, str]
    retry_in: float


@dataclass(frozen=True, slots=True)
class CompleteJob:
    job_id: str
    attempt: int
    output_blob_id: str
    engine: str | None = None


@dataclass(frozen=True, slots=True)
class FailJob:
    """The final failure; ``attempt`` None when no attempt ran (a chain too deep, attempts used up)."""

    job_id: str
    error: dict[str, str]
    attempt: int | None = None


@dataclass(frozen=True, slots=True)
class StopJob:
    """The runner cancels a job it must not run (its processor was deleted)."""

    job_id: str
    reason: str


@dataclass(frozen=True, slots=True)
class WriteOutput:
    """The job run's output blob; ``ValidationFailed`` when the data breaks the output schema."""

    job: Job
    processor: Processor
    data: Any


@dataclass(frozen=True, slots=True)
class DiscardOutput:
    """Delete the output blob of a job that was cancelled while it was written."""

    blob_id: str


class JobRunHandlers:
    def __init__(self, repository: Repository, schemas: SchemaRegistry, limits: Limits = Limits()) -> None:
        self._repo = repository
        self._schemas = schemas
        self._limits = limits

    def handlers(self) -> dict[type, Handler]:
        return {StartAttempt: self.start, RecordAttemptFailure: self.attempt_failed, CompleteJob: self.complete,
                FailJob: self.fail, StopJob: self.stop, WriteOutput: self.write_output,
                DiscardOutput: self.discard_output}

    async def _transition(self, job_id: str, ctx: Context, change: Any) -> Saved[Job]:
        def decide(current: Job | None) -> Job:
            if current is None:
                raise NotFound(f"job {job_id}")
            change(current)
            return current

        return await self._repo.execute(Job, job_id, decide, ctx)

    async def start(self, cmd: StartAttempt, ctx: Context) -> Saved[Job]:
        """``Stale`` when the job is in another run or finished."""

        def change(job: Job) -> None:
            if job.run != cmd.run or job.finished:
                raise Stale(job)
            if job.status == RUNNING and not cmd.takeover:
                raise Conflict(f"job {job.id_str} was started by another runner")
            job.start(cmd.runner)

        return await self._transition(cmd.job_id, ctx, change)

    async def attempt_failed(self, cmd: RecordAttemptFailure, ctx: Context) -> Saved[Job]:
        return await self._transition(cmd.job_id, ctx, lambda job: job.attempt_failed(cmd.attempt, cmd.error,
                                                                                        cmd.retry_in))

    async def complete(self, cmd: CompleteJob, ctx: Context) -> Saved[Job]:
        return await self._transition(cmd.job_id, ctx, lambda job: job.complete(cmd.attempt, cmd.output_blob_id,
                                                                                  cmd.engine))

    async def fail(self, cmd: FailJob, ctx: Context) -> Saved[Job]:
        return await self._transition(cmd.job_id, ctx, lambda job: job.fail(cmd.error, cmd.attempt))

    async def stop(self, cmd: StopJob, ctx: Context) -> Saved[Job]:
        return await self._transition(cmd.job_id, ctx, lambda job: job.cancel(cmd.reason))

    async def write_output(self, cmd: WriteOutput, ctx: Context) -> Saved[Blob]:
        job, processor = cmd.job, cmd.processor
        if processor.output_schema is not None:
            await self._schemas.ensure_valid(await self._schemas.resolve(processor.output_schema), cmd.data,
                                       what="the output")
        blob_id = output_blob_id(job.id_str, job.run)
        # ``budget``: what the chain may still spawn below this job, which the jobs its output
        # triggers share (the dispatcher reads it here rather than reading the job)
        source = {"job_id": job.id_str, "processor_id": processor.id_str, "depth": job.depth, "run": job.run,
                  "budget": job.spawn_budget}
        try:
            return await self._repo.execute(
                Blob,
                None,
                lambda _: Blob.create(job.owner_id, cmd.data, processor.output_schema, processor.id_str, [],
                                      self._limits, source=source, blob_id=blob_id),
                ctx,
            )
        except ConcurrencyError:
            existing = await self._repo.get(Blob, str(blob_id))
            if existing is None or (existing.aggregate.source or {}).get("job_id") != job.id_str:
                raise
            # another attempt of this run wrote it first: one output blob, written (and charged) once
            return Saved(existing.aggregate, existing.position, written=False)

    async def discard_output(self, cmd: DiscardOutput, ctx: Context) -> None:
        def decide(current: Blob | None) -> Blob:
            if current is None or current.deleted:
                raise NotFound(f"blob {cmd.blob_id}")
            current.delete()
            return current

        try:
            await self._repo.execute(Blob, cmd.blob_id, decide, ctx)
        except DomainError:
            pass


# -- reads -------------------------------------------------------------------------------------


class JobReads:
    """What a runner reads from the log before and while it acts."""

    def __init__(self, repository: Repository, schemas: SchemaRegistry, cache_size: int = 512) -> None:
        self._repo = repository
        self._schemas = schemas
        self._versions: OrderedDict[tuple[str, str, int], Any] = OrderedDict()
        self._latest: dict[str, tuple[float, Processor | None]] = {}
        self._cache_size = cache_size

    async def job(self, job_id: str) -> Saved[Job] | None:
        """The job as the log holds it now (kept for the transition that usually follows)."""
        return await self._repo.get_and_keep(Job, job_id)

    async def job_now(self, job_id: str) -> Job | None:
        """The job as the log holds it now: what a running attempt looks at, every few seconds, to
        tell whether it is still the job's (its status and attempt). While nothing was written to the
        job that is one Direct Get of at most one message (the read cache); after a change, its history
        folded a bounded batch at a time, never read whole into a list (its owner can make it long)."""
        saved = await self._repo.get(Job, job_id)
        return saved.aggregate if saved is not None else None

    async def _at_version(self, cls: type[InkAggregate], aggregate_id: str, version: int) -> Any:
        key = (cls.TYPE, aggregate_id, version)
        if key in self._versions:
            self._versions.move_to_end(key)
            return self._versions[key]
        found = await self._repo.at_version(cls, aggregate_id, version)
        if found is not None and found.version == version:  # complete: it can never change
            self._versions[key] = found
            while len(self._versions) > self._cache_size:
                self._versions.popitem(last=False)
        return found

    async def processor_at(self, processor_id: str, version: int) -> Processor | None:
        """The processor as the job was requested with it (later changes do not apply)."""
        return await self._at_version(Processor, processor_id, version)

    async def processor_now(self, processor_id: str) -> Processor | None:
        """The processor's latest state, read at most once a second per processor (only whether
        it was deleted matters here, and the deleted-processor policy cancels what starts meanwhile)."""
        now = time.monotonic()
        cached = self._latest.get(processor_id)
        if cached is not None and now - cached[0] < 1.0:
            return cached[1]
        saved = await self._repo.get(Processor, processor_id)
        found = saved.aggregate if saved is not None else None
        self._latest[processor_id] = (now, found)
        if len(self._latest) > self._cache_size:
            self._latest.pop(next(iter(self._latest)))
        return found

    async def input_at(self, blob_id: str, version: int) -> Blob | None:
        """The input blob as it was when the job was requested."""
        return await self._at_version(Blob, blob_id, version)

    async def validate_output(self, schema_id: str, data: Any) -> list[FieldError]:
        return await self._schemas.problems(await self._schemas.resolve(schema_id), data)
