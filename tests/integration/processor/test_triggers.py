"""Triggers: each matching blob event requests exactly one job, others none; a processor's own
output never triggers it; a chain of triggered jobs stops at depth 8 with chain_too_deep, and
runs at most 16 jobs however many processors each output triggers (its budget)."""

from __future__ import annotations

from adapters.client import InkstreamClient
from adapters.jobs.dispatcher import TriggerDispatcher
from domain.job import MAX_CHAIN_JOBS, MAX_DEPTH
from tests.integration.processor.helpers import ECHO, all_jobs, eventually, js_processor, schema
from tests.support.sdk import SignUp
from tests.support.system import RunningSystem

ANY_OBJECT = {"type": "object"}


async def jobs_of(ink: InkstreamClient, processor_id: str) -> list:  # type: ignore[type-arg]
    return await all_jobs(ink, processor_id=processor_id)


async def test_each_matching_event_requests_exactly_one_job_and_others_none(
    sign_up: SignUp, system: RunningSystem
) -> None:
    ink = await sign_up("triggers")
    s1, s2 = await schema(ink, "s1", ANY_OBJECT), await schema(ink, "s2", ANY_OBJECT)
    b1, b2 = (await ink.create_bucket("b1", "folder")).id, (await ink.create_bucket("b2", "folder")).id
    created = await js_processor(ink, ECHO, triggers=[{"on": "blob.created", "schema_id": s1, "bucket_id": b1}])
    updated = await js_processor(ink, ECHO, triggers=[{"on": "blob.updated", "bucket_id": b1}])

    match = await ink.create_blob({"n": 1}, schema_id=s1, bucket_ids=[b1])
    await ink.create_blob({"n": 2}, schema_id=s2, bucket_ids=[b1])  # other schema
    await ink.create_blob({"n": 3}, schema_id=s1, bucket_ids=[b2])  # other bucket
    elsewhere = await ink.create_blob({"n": 4}, schema_id=s1)  # no bucket
    await ink.update_blob(match.id, {"n": 10})  # an update: only the blob.updated processor
    await ink.update_blob(match.id, {"n": 11})
    await ink.update_blob(elsewhere.id, {"n": 12})  # an update outside b1
    sentinel = await ink.create_blob({"n": 5}, schema_id=s1, bucket_ids=[b1])

    # the dispatcher works in log order: once the sentinel's job exists, every earlier event was handled
    await eventually(lambda: _has_job_for(ink, created, sentinel.id), timeout=20)
    by_created = await jobs_of(ink, created)
    assert sorted(j.input_blob_id for j in by_created) == sorted([match.id, sentinel.id])
    assert all(j.trigger is not None and j.trigger.on == "blob.created" and j.depth == 1 for j in by_created)
    by_updated = await eventually(lambda: _count_at_least(ink, updated, 2), timeout=20)
    assert [j.input_blob_id for j in by_updated] == [match.id, match.id]
    assert sorted(j.trigger.position for j in by_updated) == sorted({j.trigger.position for j in by_updated})
    for job in by_created + by_updated:
        assert (await ink.wait_for_job(job.id)).status == "completed"

    # the same events read again (a restart, a redelivery) request nothing new
    services = system.services
    bills: list[tuple[str, int]] = []

    async def bill(user_id: str, jobs: int) -> None:
        bills.append((user_id, jobs))

    replay = TriggerDispatcher(services.bus, services.repo, services.codec, bill=bill)
    last = await services.store.last_position()
    records = []
    async for record in services.store.read_all(1):
        records.append(record)
        if record.position >= last:
            break
    await replay.handle(records)
    assert replay.requested == 0
    assert bills == [], "and charges nothing again"
    assert len(await jobs_of(ink, created)) == 2 and len(await jobs_of(ink, updated)) == 2


async def test_a_processors_output_never_triggers_it(sign_up: SignUp) -> None:
    ink = await sign_up("self")
    processor_id = await js_processor(ink, ECHO, triggers=[{"on": "blob.created"}])
    first = await ink.create_blob({"n": 1})
    job = await eventually(lambda: _has_job_for(ink, processor_id, first.id), timeout=20)
    done = await ink.wait_for_job(job.id)
    assert done.status == "completed"
    output = await ink.get_blob(done.output_blob_id)
    assert output.processor_id == processor_id and output.data == {"echo": {"n": 1}}
    sentinel = await ink.create_blob({"n": 2})  # after the output in the log
    await eventually(lambda: _has_job_for(ink, processor_id, sentinel.id), timeout=20)
    assert sorted(j.input_blob_id for j in await jobs_of(ink, processor_id)) == sorted([first.id, sentinel.id])


async def test_a_chain_of_triggered_jobs_stops_at_depth_8_with_chain_too_deep(sign_up: SignUp) -> None:
    ink = await sign_up("chain")
    a, b = await schema(ink, "chain-a", ANY_OBJECT), await schema(ink, "chain-b", ANY_OBJECT)
    hop = "function process(data) { return {hop: (data.hop || 0) + 1}; }"
    a_to_b = await js_processor(ink, hop, output_schema=b, triggers=[{"on": "blob.created", "schema_id": a}])
    b_to_a = await js_processor(ink, hop, output_schema=a, triggers=[{"on": "blob.created", "schema_id": b}])
    await ink.create_blob({"hop": 0}, schema_id=a)

    async def chain_ended() -> list | None:  # type: ignore[type-arg]
        jobs = await jobs_of(ink, a_to_b) + await jobs_of(ink, b_to_a)
        return jobs if any(j.status == "failed" for j in jobs) else None

    jobs = await eventually(chain_ended, timeout=60)
    jobs = [await ink.wait_for_job(j.id) for j in sorted(jobs, key=lambda j: j.depth)]
    assert [j.depth for j in jobs] == list(range(1, 10))
    assert [j.status for j in jobs] == ["completed"] * 8 + ["failed"]
    assert jobs[-1].error is not None and jobs[-1].error.code == "chain_too_deep" and jobs[-1].attempts == 0
    assert [j.processor_id for j in jobs] == [a_to_b, b_to_a] * 4 + [a_to_b]
    last_output = await ink.get_blob(jobs[7].output_blob_id)
    assert last_output.data == {"hop": 8}
    assert len(await jobs_of(ink, a_to_b)) + len(await jobs_of(ink, b_to_a)) == 9  # and nothing after


async def test_k_processors_on_one_schema_that_each_write_it_run_at_most_the_chains_budget(
    sign_up: SignUp,
) -> None:
    """Three processors triggered by one schema, each writing that schema: by depth alone one blob
    would run 3 + 3·2 + … (thousands of jobs). The chain runs at most MAX_CHAIN_JOBS; where its
    budget runs out every match still gets its one job, recorded refused, which runs nothing and so
    triggers nothing."""
    ink = await sign_up("fanout")
    same = await schema(ink, "fan", ANY_OBJECT)
    hop = "function process(data) { return {hop: (data.hop || 0) + 1}; }"
    fan = [await js_processor(ink, hop, output_schema=same, triggers=[{"on": "blob.created", "schema_id": same}])
           for _ in range(3)]
    marker_schema = await schema(ink, "fan-marker", ANY_OBJECT)
    marker_processor = await js_processor(ink, ECHO, triggers=[{"on": "blob.created", "schema_id": marker_schema}])
    echo = await js_processor(ink, ECHO)
    own_input = await ink.create_blob({"n": 1})
    bystander = await sign_up("bystander")
    bystander_echo = await js_processor(bystander, ECHO)
    bystander_input = await bystander.create_blob({"n": 2})

    await ink.create_blob({"hop": 0}, schema_id=same)

    async def chain() -> list:  # type: ignore[type-arg]
        jobs = [j for p in fan for j in await jobs_of(ink, p)]
        assert len(jobs) <= len(fan) * (MAX_CHAIN_JOBS + 1), f"{len(jobs)} jobs: the chain fans out past its budget"
        return jobs

    # while it runs, the user's and another user's requests answer
    mine = await ink.request_job(echo, own_input.id)
    theirs = await bystander.request_job(bystander_echo, bystander_input.id)
    assert (await ink.wait_for_job(mine.id, timeout=30)).status == "completed"
    assert (await bystander.wait_for_job(theirs.id, timeout=30)).status == "completed"
    assert (await ink.get_blob(own_input.id)).data == {"n": 1}

    async def ended() -> list | None:  # type: ignore[type-arg]
        jobs = await chain()
        if not jobs or any(j.status in ("pending", "running") for j in jobs):
            return None
        # the dispatcher works in log order: once a later blob's job exists, every output before it was seen
        marker = await ink.create_blob({"n": len(jobs)}, schema_id=marker_schema)
        await eventually(lambda: _has_job_for(ink, marker_processor, marker.id), timeout=20)
        again = await chain()
        return again if len(again) == len(jobs) and all(j.status in ("completed", "failed") for j in again) else None

    jobs = await eventually(ended, timeout=120, step=0.5)
    ran = [j for j in jobs if j.status == "completed"]
    refused = [j for j in jobs if j.status == "failed"]
    assert len(ran) == MAX_CHAIN_JOBS  # the whole budget, and not one job more
    assert max(j.depth for j in jobs) <= MAX_DEPTH  # the budget, not the depth, ended it
    assert len(ran) + len(refused) == len(jobs) and refused
    for job in refused:
        assert job.error is not None and job.error.code == "chain_too_deep" and job.attempts == 0
        assert "budget was spent" in job.error.message
    events = [j.trigger.position for j in jobs]
    # each matching change: one job per matching processor (the user's blob: all three; a job's output: the
    # other two, as no processor triggers on its own output), refused or not
    counts = sorted(events.count(p) for p in set(events))
    assert counts == [len(fan) - 1] * (len(counts) - 1) + [len(fan)], counts
    assert len(set(events)) == len(ran) + 1  # the user's blob and each job's output: a refusal makes no event
    assert len(await chain()) == len(jobs)  # and nothing after


async def _has_job_for(ink: InkstreamClient, processor_id: str, blob_id: str):  # type: ignore[no-untyped-def]
    return next((j for j in await jobs_of(ink, processor_id) if j.input_blob_id == blob_id), None)


async def _count_at_least(ink: InkstreamClient, processor_id: str, n: int):  # type: ignore[no-untyped-def]
    jobs = await jobs_of(ink, processor_id)
    return sorted(jobs, key=lambda j: j.trigger.position) if len(jobs) >= n else None
