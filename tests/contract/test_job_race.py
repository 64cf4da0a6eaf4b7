"""Two runners on one job, against a real nats-server: one attempt starts, one outcome lands, one output blob.

The runners here are two ``JobRunner``s of one process handed the same work
directly (no consumer): what a redelivery does to two runner processes.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from adapters.jobs.runner import JobRunner, Outcome, RunnerOptions, Work
from domain.blob import Blob
from domain.job import Job
from tests.integration.processor.helpers import SLOW, eventually, isolated_system, js_processor, user
from tests.support.servers import Database
from tests.support.system import RunningSystem


@pytest.fixture
async def quiet(database: Database) -> AsyncIterator[RunningSystem]:
    """A system without a runner of its own: the test's two runners are the only ones."""
    async with isolated_system(database, run_jobs=False) as (system, _):
        yield system


def runners(system: RunningSystem, ack_wait: float = 30.0) -> tuple[JobRunner, JobRunner]:
    s, nc = system.services, system.running.nc
    options = RunnerOptions(watch_interval=0.1, ack_wait=ack_wait)
    return tuple(JobRunner(nc, s.bus, s.job_reads, s.processor_types, options, runner_id=name)  # type: ignore[return-value]
                 for name in ("runner-a", "runner-b"))


async def setup(system: RunningSystem, ms: int) -> tuple[Work, str]:
    ink = await user(system, "race")
    processor_id = await js_processor(ink, SLOW)
    job = await ink.request_job(processor_id, (await ink.create_blob({"ms": ms})).id)
    return Work(None, job.id, 1, ink.user_id or "", None), processor_id  # type: ignore[arg-type]


async def history(system: RunningSystem, job_id: str) -> list[str]:
    return [r.type for r in await system.services.store.load(Job.TYPE, job_id)]


async def outputs(system: RunningSystem, job_id: str) -> list[str]:
    """Output blobs whose source is the job, straight from the log."""
    found = []
    async for record in system.services.store.read_all(1):
        if record.type == "Blob.Created" and (record.data.get("source") or {}).get("job_id") == job_id:
            found.append(record.aggregate_id)
        if record.position >= await system.services.store.last_position():
            return found
    return found  # pragma: no cover


async def test_two_runners_racing_on_a_pending_job_start_one_attempt_and_record_one_outcome(
    quiet: RunningSystem,
) -> None:
    a, b = runners(quiet)
    work, _ = await setup(quiet, 0)
    results = await asyncio.gather(a._process(work), b._process(work))
    events = await history(quiet, work.job_id)
    print(f"\ntwo runners on one pending job: outcomes {[r[0].value for r in results]}; events {events}")
    assert events == ["Job.Requested", "Job.Started", "Job.Completed"]
    assert sorted(r[0].value for r in results) == ["ack", "let_go"]
    assert len(await outputs(quiet, work.job_id)) == 1


async def test_a_takeover_while_the_first_runner_still_runs_ends_in_one_outcome_and_one_output(
    quiet: RunningSystem,
) -> None:
    a, b = runners(quiet, ack_wait=0.5)
    work, _ = await setup(quiet, 2000)
    first = asyncio.create_task(a._process(work))
    await eventually(lambda: _started(quiet, work.job_id), timeout=10, step=0.02)
    early = await b._process(work)  # delivered again within ack_wait: a duplicate, not abandoned
    assert early[0] is Outcome.LET_GO
    await asyncio.sleep(0.6)
    second = await b._process(work)  # after ack_wait: the message came back, the job is taken over
    first_outcome = await first
    events = await history(quiet, work.job_id)
    job = (await quiet.services.repo.get(Job, work.job_id)).aggregate  # type: ignore[union-attr]
    blobs = await outputs(quiet, work.job_id)
    print(f"\ntakeover while the first runner still ran: first {first_outcome[0].value}, second "
          f"{second[0].value}; events {events}; output blobs {blobs}")
    assert events == ["Job.Requested", "Job.Started", "Job.Started", "Job.Completed"]
    assert (job.status, job.attempts, job.runner) == ("completed", 2, "runner-b")
    assert first_outcome[0] is Outcome.LET_GO and second[0] is Outcome.ACK
    assert blobs == [job.output_blob_id]
    assert (await quiet.services.repo.get(Blob, job.output_blob_id)) is not None


async def _started(system: RunningSystem, job_id: str) -> bool:
    return "Job.Started" in await history(system, job_id)
