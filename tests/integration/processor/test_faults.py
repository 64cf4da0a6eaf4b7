"""Faults: a runner SIGKILLed mid-job, a processor that always fails, NATS restarted while jobs run.

Each prints what it did and counted (run with -s to read it)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
from collections import Counter
from pathlib import Path

from adapters.client import InkstreamClient
from domain.job import Job
from tests.integration.processor.helpers import SLOW, eventually, isolated_system, js_processor, user
from tests.integration.setup.test_up import INKSTREAM, wait_ready
from tests.support.sdk import SignUp
from tests.support.servers import Database, scratch_dir
from tests.support.system import TEST_SECRET, RunningSystem, free_port

FINAL = ("Job.Completed", "Job.Failed", "Job.Cancelled")


def spawn_worker(nats_url: str, dsn: str, port: int, data_dir: Path, log: Path) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("INKSTREAM_")}
    env.update(
        INKSTREAM_NATS_URL=nats_url, INKSTREAM_DATABASE_URL=dsn, INKSTREAM_HTTP_PORT=str(port),
        INKSTREAM_DATA_DIR=str(data_dir), INKSTREAM_JWT_SECRET=TEST_SECRET, INKSTREAM_LOG_FORMAT="json",
        INKSTREAM_JOB_ACK_WAIT_SECONDS="2",
    )  # fmt: skip
    with log.open("ab") as out:
        return subprocess.Popen([str(INKSTREAM), "work"], env=env, stdout=out, stderr=subprocess.STDOUT)


async def history(system: RunningSystem, job_id: str) -> list:  # type: ignore[type-arg]
    return await system.services.store.load(Job.TYPE, job_id)


async def outputs_of(ink: InkstreamClient, processor_id: str) -> list:  # type: ignore[type-arg]
    return [b async for b in ink.iter_pages(ink.list_blobs, limit=500) if b.processor_id == processor_id]


async def test_a_runner_killed_mid_job_is_replaced_and_the_job_ends_once(database: Database) -> None:
    async with isolated_system(database, run_jobs=False) as (system, nats):
        assert nats.url
        root = scratch_dir("ink-work-")
        workers = {}
        try:
            for _ in range(2):
                port = free_port()
                proc = spawn_worker(nats.url, system.running.database_url, port, root, root / f"work-{port}.log")
                workers[proc.pid] = proc
                await wait_ready(f"http://127.0.0.1:{port}", proc)
            ink = await user(system, "killed")
            processor_id = await js_processor(ink, SLOW, limits={"timeout_seconds": 30})
            job = await ink.request_job(processor_id, (await ink.create_blob({"ms": 3000})).id)

            async def started_by() -> int | None:
                starts = [r for r in await history(system, job.id) if r.type == "Job.Started"]
                return int(starts[0].data["runner"].split(":")[1]) if starts else None

            victim = await eventually(started_by, timeout=20, step=0.05)
            workers[victim].send_signal(signal.SIGKILL)
            workers[victim].wait()
            killed_at = time.monotonic()
            done = await ink.wait_for_job(job.id, timeout=60)
            recovered = time.monotonic() - killed_at
            events = await history(system, job.id)
            starts = [r for r in events if r.type == "Job.Started"]
            blobs = await outputs_of(ink, processor_id)
            print(f"\nSIGKILLed runner pid {victim} while it ran attempt 1 (a 3 s script); the other runner took the "
                  f"job over after ack_wait (2 s) and finished it {recovered:.1f} s after the kill; events "
                  f"{[r.type for r in events]}; output blobs {len(blobs)}")
            assert done.status == "completed" and done.attempts == 2
            assert int(starts[1].data["runner"].split(":")[1]) != victim
            assert starts[1].data["recovered_attempt"] == 1
            assert sum(r.type in FINAL for r in events) == 1
            assert [b.id for b in blobs] == [done.output_blob_id]
        finally:
            for proc in workers.values():
                if proc.poll() is None:
                    proc.send_signal(signal.SIGTERM)
            for proc in workers.values():
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    proc.kill()


async def test_a_processor_that_always_fails_ends_failed_after_max_attempts(
    sign_up: SignUp, system: RunningSystem
) -> None:
    ink = await sign_up("doomed")
    processor_id = await js_processor(ink, "function process(d) { throw new TypeError('never works: ' + d.n); }",
                                      limits={"max_attempts": 3})
    job = await ink.request_job(processor_id, (await ink.create_blob({"n": 7})).id)
    done = await ink.wait_for_job(job.id, timeout=30)
    assert done.status == "failed" and done.attempts == 3 and done.output_blob_id is None
    assert done.error is not None and done.error.code == "sandbox_error"
    assert "TypeError: never works: 7" in done.error.message
    kinds = [r.type for r in await history(system, job.id)]
    assert kinds == ["Job.Requested", "Job.Started", "Job.AttemptFailed", "Job.Started", "Job.AttemptFailed",
                     "Job.Started", "Job.Failed"]
    await asyncio.sleep(1.5)  # no further attempt follows the final failure
    assert [r.type for r in await history(system, job.id)] == kinds


async def test_nats_restarted_while_jobs_run_every_job_ends_once(database: Database) -> None:
    async with isolated_system(database, job_ack_wait_seconds=3, job_retry_backoff_seconds=0.2) as (system, nats):
        ink = await user(system, "outage")
        processor_id = await js_processor(ink, SLOW, limits={"timeout_seconds": 30})
        blobs = [await ink.create_blob({"ms": 400, "n": n}) for n in range(30)]
        jobs = [await ink.request_job(processor_id, b.id) for b in blobs]
        await asyncio.sleep(0.5)
        done_before = len((await ink.list_jobs(status="completed", limit=500)).items)
        pid = nats.pid
        nats.kill()
        await asyncio.sleep(2.0)
        await nats.start()
        back = time.monotonic()
        finished = [await ink.wait_for_job(j.id, timeout=90) for j in jobs]
        settled = time.monotonic() - back
        finals: Counter[str] = Counter()
        for job in jobs:
            events = await history(system, job.id)
            ends = [r.type for r in events if r.type in FINAL]
            assert len(ends) == 1, (job.id, [r.type for r in events])
            finals[ends[0]] += 1
        outputs = await outputs_of(ink, processor_id)
        print(f"\nSIGKILLed nats-server pid {pid} while 30 jobs of 0.4 s ran ({done_before} completed), restarted "
              f"it 2 s later; every job final {settled:.1f} s after the restart: {dict(finals)}; output blobs "
              f"{len(outputs)}")
        assert done_before < 30, "the outage should hit jobs that were still to run"
        assert {j.status for j in finished} == {"completed"}
        assert sorted(b.id for b in outputs) == sorted(j.output_blob_id for j in finished)
        assert sorted(b.data["n"] for b in outputs) == list(range(30))
