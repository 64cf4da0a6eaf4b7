"""What a job runner records, through the log, and what it reads first.

The runner never trusts its message: it reads the job, and every transition
is appended with the job's expected sequence (``Repository.execute``), so of
two runners that race on one job exactly one starts each attempt and exactly
one outcome lands. A runner's command ids are fresh per action and reused
only when the same action is retried after the log was unreachable (then the
append lands once).

The output blob's id is derived from the job and its run, and the blob is
created with expected sequence 0: two runners that both got as far as
writing it produce one blob, and the slower one finds it and uses it.

A processor at a version and a blob at a version never change, so the runner
keeps the last few it read (a batch of jobs usually shares its processor,
often its input).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from typing import Any
from uuid import UUID

from domain.base import InkAggregate
from domain.blob import Blob
from domain.errors import ConcurrencyError, DomainError, NotFound, ValidationFailed
from domain.ids import hashed_id
from domain.job import Job
from domain.processor import Processor
from domain.recorded import Recorded

from commands.repository import Context, Repository, Saved
from commands.schemas import SchemaCommands


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


class JobRuns:
    def __init__(self, repository: Repository, schemas: SchemaCommands, runner_id: str, cache_size: int = 512) -> None:
        self._repo = repository
        self._schemas = schemas
        self.runner_id = runner_id
        self.actor = runner_actor(runner_id)
        self._versions: OrderedDict[tuple[str, str, int], Any] = OrderedDict()
        self._latest: dict[str, tuple[float, Processor | None]] = {}
        self._cache_size = cache_size

    # -- reading ----------------------------------------------------------------------------

    async def job(self, job_id: str) -> Saved[Job] | None:
        """The job as the log holds it now (kept for the transition that usually follows)."""
        saved = await self._repo.get(Job, job_id)
        if saved is not None:
            self._repo.remember(saved)
        return saved

    async def last_event(self, job_id: str) -> Recorded | None:
        records = await self._repo.history(Job.TYPE, job_id)
        return records[-1] if records else None

    async def _at_version(self, cls: type[InkAggregate], aggregate_id: str, version: int) -> Any:
        key = (cls.TYPE, aggregate_id, version)
        if key in self._versions:
            self._versions.move_to_end(key)
            return self._versions[key]
        records = await self._repo.history(cls.TYPE, aggregate_id)
        found = self._repo.codec.rebuild([r for r in records if r.version <= version])
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

    async def validate_output(self, schema_id: str, data: Any) -> list[Any]:
        resolved = await self._schemas.resolve(schema_id)
        return self._schemas.check(resolved, data)

    # -- transitions --------------------------------------------------------------------------

    async def _transition(self, job_id: str, command_id: str, change: Any) -> Saved[Job]:
        def decide(current: Job | None) -> Job:
            if current is None:
                raise NotFound(f"job {job_id}")
            change(current)
            return current

        return await self._repo.execute(Job, job_id, decide, Context(self.actor, command_id))

    async def start(self, job_id: str, run: int, command_id: str) -> Saved[Job]:
        """The next attempt of ``run``; ``Stale`` when the job is in another run or finished."""

        def change(job: Job) -> None:
            if job.run != run or job.finished:
                raise Stale(job)
            job.start(self.runner_id)

        return await self._transition(job_id, command_id, change)

    async def attempt_failed(
        self, job_id: str, attempt: int, error: dict[str, str], retry_in: float, command_id: str
    ) -> Saved[Job]:
        return await self._transition(job_id, command_id, lambda job: job.attempt_failed(attempt, error, retry_in))

    async def complete(
        self, job_id: str, attempt: int, blob_id: str, engine: str | None, command_id: str
    ) -> Saved[Job]:
        return await self._transition(job_id, command_id, lambda job: job.complete(attempt, blob_id, engine))

    async def fail(self, job_id: str, error: dict[str, str], attempt: int | None, command_id: str) -> Saved[Job]:
        return await self._transition(job_id, command_id, lambda job: job.fail(error, attempt))

    async def cancel(self, job_id: str, reason: str, command_id: str) -> Saved[Job]:
        return await self._transition(job_id, command_id, lambda job: job.cancel(reason))

    # -- the output blob ------------------------------------------------------------------------

    async def create_output(self, job: Job, processor: Processor, data: Any, command_id: str) -> Saved[Blob]:
        """The job run's output blob, typed by the processor's output schema.

        ``ValidationFailed`` when the data does not satisfy the schema or
        cannot be stored (the caller fails the job with ``invalid_output``).
        """
        if processor.output_schema is not None:
            errors = await self.validate_output(processor.output_schema, data)
            if errors:
                raise ValidationFailed(f"the output does not satisfy {processor.output_schema}", errors)
        blob_id = output_blob_id(job.id_str, job.run)
        source = {"job_id": job.id_str, "processor_id": processor.id_str, "depth": job.depth, "run": job.run}
        try:
            return await self._repo.execute(
                Blob,
                None,
                lambda _: Blob.create(job.owner_id, data, processor.output_schema, processor.id_str, [], source,
                                      blob_id=blob_id),
                Context(self.actor, command_id),
            )
        except ConcurrencyError:
            existing = await self._repo.get(Blob, str(blob_id))
            if existing is None or (existing.aggregate.source or {}).get("job_id") != job.id_str:
                raise
            return existing  # another runner of this run wrote it first: one output blob

    async def discard_output(self, blob_id: str, command_id: str) -> None:
        """Delete an output blob whose job was cancelled before it could complete."""

        def decide(current: Blob | None) -> Blob:
            if current is None or current.deleted:
                raise NotFound(f"blob {blob_id}")
            current.delete()
            return current

        try:
            await self._repo.execute(Blob, blob_id, decide, Context(self.actor, command_id))
        except DomainError:
            pass
