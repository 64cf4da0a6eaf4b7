"""Cancel, retry, bulk retry, retries with backoff, and an honest status throughout."""

from __future__ import annotations

import asyncio
import time

from adapters.client import InkstreamClient
from tests.integration.processor.helpers import SLOW, all_jobs, eventually, js_processor
from tests.support.sdk import SignUp


def failing_until(seconds: float) -> str:
    """process(data) that throws until ``seconds`` from now, then answers: a transient failure."""
    until = int((time.time() + seconds) * 1000)
    return (f"function process(data) {{ if (Date.now() < {until}) throw new Error('not yet ' + data.n); "
            "return {ok: data.n}; }")


async def test_a_running_job_is_cancelled_its_result_discarded(sign_up: SignUp) -> None:
    ink = await sign_up("cancel")
    processor_id = await js_processor(ink, SLOW, limits={"timeout_seconds": 30})
    blob = await ink.create_blob({"ms": 2500})
    job = await ink.request_job(processor_id, blob.id)
    await eventually(lambda: _status_is(ink, job.id, "running"), timeout=20, step=0.05)
    cancelled = await ink.cancel_job(job.id)
    assert cancelled.status == "cancelled" and cancelled.finished_at is not None
    await asyncio.sleep(3.5)  # longer than the script would have run
    after = await ink.get_job(job.id, consistency="strong")
    assert after.status == "cancelled" and after.output_blob_id is None
    outputs = [b for b in (await ink.list_blobs(consistency="strong")).items if b.processor_id == processor_id]
    assert outputs == [], "a cancelled job's result is discarded"


async def test_a_failed_attempt_is_retried_with_backoff_and_the_job_stays_honest(sign_up: SignUp) -> None:
    ink = await sign_up("retries")
    processor_id = await js_processor(ink, failing_until(1.5), limits={"max_attempts": 5})
    blob = await ink.create_blob({"n": 1})
    job = await ink.request_job(processor_id, blob.id)
    seen: list[tuple[str, int, str | None]] = []
    while True:
        current = await ink.get_job(job.id)
        seen.append((current.status, current.attempts, current.last_error.code if current.last_error else None))
        if current.status in ("completed", "failed", "cancelled"):
            break
        await asyncio.sleep(0.05)
    assert current.status == "completed" and current.error is None and current.attempts >= 2, seen
    assert ("pending", 1, "sandbox_error") in seen, "between attempts the job is pending, with the last error"
    assert all(status != "completed" for status, _, _ in seen[:-1])
    ink.observe_position(current.position)  # read what the job made
    assert (await ink.get_blob(current.output_blob_id)).data == {"ok": 1}


async def test_a_job_waiting_for_its_retry_can_be_cancelled_and_then_retried(sign_up: SignUp) -> None:
    ink = await sign_up("pending")
    processor_id = await js_processor(ink, failing_until(2.0), limits={"max_attempts": 5})
    blob = await ink.create_blob({"n": 2})
    job = await ink.request_job(processor_id, blob.id)
    await eventually(lambda: _pending_after_a_failure(ink, job.id), timeout=20, step=0.02)
    cancelled = await ink.cancel_job(job.id)
    assert cancelled.status == "cancelled"
    await asyncio.sleep(2.5)  # its retry would have come due (backoff 1 s) and succeeded by now
    assert (await ink.get_job(job.id, consistency="strong")).status == "cancelled"
    again = await ink.retry_job(job.id)
    assert again.status == "pending" and again.error is None
    done = await ink.wait_for_job(job.id)
    assert done.status == "completed"
    assert (await ink.get_blob(done.output_blob_id)).data == {"ok": 2}


async def test_a_failed_job_and_every_failed_job_of_a_processor_can_be_retried(sign_up: SignUp) -> None:
    ink = await sign_up("bulk")
    processor_id = await js_processor(ink, failing_until(2.0), limits={"max_attempts": 1})
    other_id = await js_processor(ink, failing_until(0.0))
    blobs = [await ink.create_blob({"n": n}) for n in range(4)]
    jobs = [await ink.request_job(processor_id, b.id) for b in blobs]
    other = await ink.request_job(other_id, blobs[0].id)
    finished = [await ink.wait_for_job(j.id) for j in jobs]
    assert [j.status for j in finished] == ["failed"] * 4
    assert finished[0].error is not None and finished[0].error.code == "sandbox_error"
    assert "not yet 0" in finished[0].error.message and finished[0].attempts == 1
    assert (await ink.wait_for_job(other.id)).status == "completed"
    await asyncio.sleep(2.0)

    single = await ink.retry_job(jobs[0].id)
    assert single.status == "pending" and single.attempts == 1
    assert (await ink.wait_for_job(jobs[0].id)).status == "completed"

    bulk = await ink.retry_failed_jobs(processor_id)
    assert bulk.retried == 3 and bulk.position > 0
    done = [await ink.wait_for_job(j.id) for j in jobs]
    assert [j.status for j in done] == ["completed"] * 4
    assert [(await ink.get_blob(j.output_blob_id)).data for j in done] == [{"ok": n} for n in range(4)]
    assert (await ink.retry_failed_jobs(processor_id)).retried == 0
    listed = await all_jobs(ink, processor_id=processor_id)
    assert [j.id for j in listed] == [j.id for j in reversed(jobs)]  # newest first
    assert {j.id for j in await all_jobs(ink, status="completed")} == {j.id for j in jobs} | {other.id}
    assert await all_jobs(ink, status="failed") == []


async def test_deleting_a_processor_cancels_its_unfinished_jobs(sign_up: SignUp) -> None:
    ink = await sign_up("delete")
    processor_id = await js_processor(ink, failing_until(30.0), limits={"max_attempts": 5})
    job = await ink.request_job(processor_id, (await ink.create_blob({"n": 3})).id)
    await eventually(lambda: _pending_after_a_failure(ink, job.id), timeout=20, step=0.02)
    await ink.delete_processor(processor_id)
    cancelled = await eventually(lambda: _status_is(ink, job.id, "cancelled"), timeout=10)
    assert cancelled.finished_at is not None


async def _status_is(ink: InkstreamClient, job_id: str, status: str):  # type: ignore[no-untyped-def]
    job = await ink.get_job(job_id)
    return job if job.status == status else None


async def _pending_after_a_failure(ink: InkstreamClient, job_id: str) -> bool:
    job = await ink.get_job(job_id)
    return job.status == "pending" and job.attempts >= 1
