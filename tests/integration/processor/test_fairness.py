"""Fairness: one user's many jobs do not keep another user's one waiting behind them."""

from __future__ import annotations

import asyncio
import time

from tests.integration.processor.helpers import SLOW, isolated_system, js_processor, user
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
