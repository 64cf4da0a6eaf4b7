"""Jobs in /metrics and in `inkstream audit processor|job ID`."""

from __future__ import annotations

import asyncio

import aiohttp
import orjson

from tests.integration.processor.helpers import ECHO, js_processor
from tests.integration.state.test_replay import run_inkstream
from tests.support.sdk import SignUp
from tests.support.system import RunningSystem


async def test_job_metrics_and_the_audit_of_a_processor_and_a_job(
    sign_up: SignUp, system: RunningSystem, http: aiohttp.ClientSession
) -> None:
    ink = await sign_up("observed")
    processor_id = await js_processor(ink, ECHO)
    job = await ink.request_job(processor_id, (await ink.create_blob({"n": 1})).id)
    done = await ink.wait_for_job(job.id)
    assert done.status == "completed"
    # The runner counts the transition once its append is acknowledged; the read model (which
    # wait_for_job follows) may show the job completed a moment before that.
    for _ in range(100):
        async with http.get("/metrics") as r:
            text = await r.text()
        if 'jobs_total{status="completed",type="js-transform"}' in text:
            break
        await asyncio.sleep(0.05)
    assert 'jobs_total{status="completed",type="js-transform"}' in text
    assert 'jobs_total{status="pending",type="js-transform"}' in text
    assert 'job_duration_seconds_count{outcome="completed",type="js-transform"}' in text
    assert 'jobs_running{type="js-transform"}' in text
    assert "jobs_queue_depth" in text

    code, out, err = await run_inkstream(system, "audit", "job", job.id, "--json")
    assert code == 0, err
    events = [orjson.loads(line) for line in out.splitlines()]
    assert [e["type"] for e in events] == ["Job.Requested", "Job.Started", "Job.Completed"]
    assert events[0]["actor"] == ink.user_id and events[1]["actor"].startswith("system:runner/")
    assert events[2]["data"]["output_blob_id"] == done.output_blob_id
    code, out, err = await run_inkstream(system, "audit", "processor", processor_id, "--json")
    assert code == 0, err
    assert [orjson.loads(line)["type"] for line in out.splitlines()] == ["Processor.Registered"]
