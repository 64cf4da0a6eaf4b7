"""The jobs context, built in one place: processor types, the processor and job
commands, and the two workers that follow the log (the job runner and the
trigger dispatcher). The container calls ``build_jobs`` and, in the roles
that run jobs (``up``, ``work``), ``start_job_workers``."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from adapters.jobs.dispatcher import DispatcherLoop, TriggerDispatcher
from adapters.jobs.runner import JobRunner, RunnerOptions, default_runner_id
from adapters.postgres.jobs import ReadModelJobFinder, ReadModelRunningJobs
from adapters.processors.base import HttpSessions, ProcessorDeps
from adapters.processors.catalog import ProcessorCatalog
from adapters.processors.sandbox_bridge import ThreadedSandbox
from commands.job_runs import JobRuns
from commands.jobs import JobCommands
from commands.processors import ProcessorCommands
from commands.schemas import SchemaCommands

if TYPE_CHECKING:
    from adapters.runtime.container import Container


@dataclass
class Jobs:
    catalog: ProcessorCatalog
    processors: ProcessorCommands
    jobs: JobCommands
    schemas: SchemaCommands
    sandbox: ThreadedSandbox
    http: HttpSessions
    runner: JobRunner | None = None
    dispatcher: DispatcherLoop | None = None
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    async def close(self) -> None:
        await self.http.close()
        self.sandbox.close()


def build_jobs(container: "Container", schemas: SchemaCommands) -> Jobs:
    settings = container.settings
    sandbox = ThreadedSandbox()
    http = HttpSessions()
    deps = ProcessorDeps(
        sandbox=sandbox,
        http=http,
        llm_base_url=settings.llm_base_url,
        llm_api_key=settings.llm_api_key,
        llm_timeout_seconds=settings.llm_timeout_seconds,
        llm_max_retries=settings.llm_max_retries,
    )
    catalog = ProcessorCatalog.discover(deps)
    processors = ProcessorCommands(container.repo, schemas, catalog)
    finder = ReadModelJobFinder(container.pool, container.watch, settings.read_wait_seconds)
    jobs = JobCommands(container.repo, processors, catalog, finder)
    return Jobs(catalog, processors, jobs, schemas, sandbox, http)


def start_job_workers(container: "Container", context: Jobs) -> list[asyncio.Task[None]]:
    """The job runner (a member of the shared ``jobs`` consumer) and the trigger dispatcher."""
    settings = container.settings
    options = RunnerOptions(
        concurrency=settings.job_concurrency,
        max_running_per_user=settings.job_max_running_per_user,
        ack_wait=settings.job_ack_wait_seconds,
        retry_backoff=settings.job_retry_backoff_seconds,
        retry_backoff_max=settings.job_retry_backoff_max_seconds,
    )
    runs = JobRuns(container.repo, context.schemas, default_runner_id())
    context.runner = JobRunner(
        container.nc, runs, context.catalog, options, metrics=container.metrics, tracing=container.tracing,
        elsewhere=ReadModelRunningJobs(container.pool),
    )
    dispatcher = TriggerDispatcher(context.jobs, container.repo, container.codec, metrics=container.metrics,
                                   tracing=container.tracing)
    context.dispatcher = DispatcherLoop(dispatcher, container.store, container.database_url,
                                        batch_size=settings.projector_batch_size)
    context.tasks = [
        asyncio.create_task(context.runner.run(), name="job-runner"),
        asyncio.create_task(context.dispatcher.run(), name="trigger-dispatcher"),
    ]
    return context.tasks
