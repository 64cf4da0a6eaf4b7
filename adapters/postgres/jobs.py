"""The job ports that read the read model: which jobs of a processor are in a
state (bulk retry, the deleted-processor policy), and a user's running jobs
(the runners' fairness count)."""

from __future__ import annotations

import asyncpg

from adapters.postgres.queries.jobs import job_ids, running_job_ids
from adapters.postgres.watch import ProjectionWatch


class ReadModelJobFinder:
    """Implements ``commands.ports.JobFinder``: answers once the jobs projection reached the position."""

    def __init__(self, pool: asyncpg.Pool, watch: ProjectionWatch, wait_seconds: float) -> None:
        self._pool = pool
        self._watch = watch
        self._wait = wait_seconds

    async def job_ids(self, processor_id: str, statuses: tuple[str, ...], position: int) -> list[str]:
        await self._watch.wait(position, ("jobs",), self._wait)
        return await job_ids(self._pool, processor_id, statuses)


class ReadModelRunningJobs:
    """Implements ``adapters.jobs.runner.RunningElsewhere``."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def running_jobs(self, owner_id: str) -> set[str]:
        return await running_job_ids(self._pool, owner_id)
