"""Fairness: one user's many jobs do not keep another user's one waiting behind them."""

from __future__ import annotations

import asyncio
import time

from tests.integration.processor.helpers import SLOW, eventually, isolated_system, js_processor, user
from tests.support.servers import Database

PER_USER = 2


async def test_a_users_500_jobs_do_not_starve_another_users_one(database: Database) -> None:
    async with isolated_system(database, job_max_running_per_user=PER_USER, job_concurrency=4) as (system, _):
        a, b = await user(system, "busy"), await user(system, "patient")
        a_processor = await js_processor(a, SLOW)
        a_input = await a.create_blob({"ms": 50})
        gate = asyncio.Semaphore(16)

        async def request() -> str:
            async with gate:
                return (await a.request_job(a_processor, a_input.id)).id

        a_jobs = await asyncio.gather(*(request() for _ in range(500)))
        b_processor = await js_processor(b, SLOW)
        asked = time.monotonic()
        b_job = await b.request_job(b_processor, (await b.create_blob({"ms": 50})).id)

        running_seen: list[int] = []

        async def sample() -> None:
            while True:
                page = await a.list_jobs(processor_id=a_processor, status="running", limit=500, consistency="eventual")
                running_seen.append(len(page.items))
                await asyncio.sleep(0.05)

        sampler = asyncio.create_task(sample())
        try:
            done = await b.wait_for_job(b_job.id, timeout=60)
            waited = time.monotonic() - asked
            a_finished = len((await a.list_jobs(processor_id=a_processor, status="completed", limit=500)).items)
        finally:
            sampler.cancel()
        print(f"\nuser A requested {len(a_jobs)} jobs of 50 ms (at most {PER_USER} running per user), then user B "
              f"one: B's completed {waited:.2f} s later, when A had {a_finished} of 500 completed; A's running jobs "
              f"seen at most {max(running_seen, default=0)} at once")
        assert done.status == "completed"
        assert a_finished < 500, "B's job had to wait for A's whole queue"
        assert max(running_seen, default=0) <= PER_USER


async def test_registrations_answer_while_every_job_worker_runs_a_long_job(database: Database) -> None:
    """A registration's compile check runs on the API's sandbox, never behind the job runner's
    workers: there a queue waits up to an hour for jobs, so two accounts running endless
    transforms could hold every other user's processor registration until theirs timed out."""
    async with isolated_system(database, job_concurrency=1, job_max_running_per_user=1) as (system, _):
        attacker, victim = await user(system, "spinner"), await user(system, "victim")
        spinner = await js_processor(attacker, SLOW, limits={"timeout_seconds": 120, "max_attempts": 1})
        job = await attacker.request_job(spinner, (await attacker.create_blob({"ms": 110_000})).id)

        async def running() -> bool:
            return (await attacker.get_job(job.id)).status == "running"

        await eventually(running, timeout=60)
        registered = await asyncio.wait_for(js_processor(victim, "function process(d) { return d; }"), 60)
        assert registered
        assert await running(), "the registration answered only once the long job had ended"
        await attacker.cancel_job(job.id)


async def test_jobs_run_at_once_only_as_far_as_their_memory_limits_fit_the_runners_budget(database: Database) -> None:
    """Counted by number alone, jobs of 1 GB each could ask one runner's host for tens of GB. With a
    budget of 1,024 MB, two such jobs of two users run one after the other (the whole budget), and so do
    one user's two jobs of 512 MB (at most half of it per user)."""
    async with isolated_system(database, job_concurrency=4, job_memory_budget_mb=1024) as (system, _):
        ink, other = await user(system, "hungry"), await user(system, "hungry-too")
        timed = "function process(d) { var t0 = Date.now(); while (Date.now() < t0 + d.ms) {} return {t0: t0, t1: Date.now()}; }"

        async def one_after_the_other(pairs: list[tuple[object, str]]) -> None:
            jobs = []
            for who, processor in pairs:
                blob = await who.create_blob({"ms": 400})  # type: ignore[attr-defined]
                jobs.append((who, await who.request_job(processor, blob.id)))  # type: ignore[attr-defined]
            done = [(who, await who.wait_for_job(j.id, timeout=60)) for who, j in jobs]  # type: ignore[attr-defined]
            assert [d.status for _, d in done] == ["completed", "completed"]
            runs = sorted([(await who.get_blob(d.output_blob_id)).data for who, d in done],  # type: ignore[attr-defined]
                          key=lambda r: r["t0"])
            assert runs[1]["t0"] >= runs[0]["t1"], f"the second ran beside the first: {runs}"

        await one_after_the_other([(ink, await js_processor(ink, timed, limits={"max_memory_mb": 1024})),
                                   (other, await js_processor(other, timed, limits={"max_memory_mb": 1024}))])
        half = await js_processor(ink, timed, limits={"max_memory_mb": 512})
        await one_after_the_other([(ink, half), (ink, half)])
        small = await js_processor(ink, SLOW, limits={"max_memory_mb": 16})
        blob_small = await ink.create_blob({"ms": 10})  # and the budget is all given back
        assert (await ink.wait_for_job((await ink.request_job(small, blob_small.id)).id, timeout=30)).status \
            == "completed"
