"""The roles that run jobs (``up``, ``work``) start two workers on the log, here in one place:
the job runner (a member of the shared ``jobs`` consumer) and the trigger dispatcher
(a subscriber of the process's shared reader)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass

from adapters.jobs.dispatcher import DispatcherLoop, TriggerDispatcher
from adapters.jobs.migrations import MigrationOptions
from adapters.jobs.runner import JobRunner, RunnerOptions
from adapters.runtime.bootstrap import Services
from adapters.shared_log import SharedLog
from commands.ports import Sandbox
from nats.aio.client import Client


@dataclass
class JobWorkers:
    runner: JobRunner
    dispatcher: DispatcherLoop


def start_job_workers(
    stack: AsyncExitStack,
    services: Services,
    nc: Client,
    shared_log: SharedLog,
    database_url: str,
    stop_tasks: Callable[[list[asyncio.Task[None]]], Awaitable[None]],
    sandbox: Sandbox | None = None,
) -> JobWorkers:
    """``sandbox``: the one migration runs' transforms use (the runner's own, like js-transform jobs')."""
    settings = services.settings
    options = RunnerOptions(
        concurrency=settings.job_concurrency,
        max_running_per_user=settings.job_max_running_per_user,
        ack_wait=settings.job_ack_wait_seconds,
        retry_backoff=settings.job_retry_backoff_seconds,
        retry_backoff_max=settings.job_retry_backoff_max_seconds,
        memory_budget_mb=settings.job_memory_budget_mb,
    )
    runner = JobRunner(nc, services.bus, services.job_reads, services.processor_types, options,
                       metrics=services.metrics, tracing=services.tracing, elsewhere=services.reads.model,
                       migrations=services.migration_reads, sandbox=sandbox,
                       migration_options=MigrationOptions(batch_size=settings.migration_batch_size,
                                                          ack_wait=settings.job_ack_wait_seconds),
                       bill_written=services.limiters.bill_written)
    dispatcher = DispatcherLoop(
        TriggerDispatcher(services.bus, services.repo, services.codec, metrics=services.metrics,
                          tracing=services.tracing, bill=services.limiters.bill_requests),
        shared_log, database_url, batch_size=settings.projector_batch_size,
    )  # fmt: skip
    tasks = [asyncio.create_task(runner.run(), name="job-runner"),
             asyncio.create_task(dispatcher.run(), name="trigger-dispatcher")]
    stack.push_async_callback(stop_tasks, tasks)
    return JobWorkers(runner, dispatcher)
