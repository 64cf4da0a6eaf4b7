"""Seed Task 5 (processor execution) and the eventual-consistency half of Task 11."""

from __future__ import annotations

import asyncio

from adapters.client import InkstreamClient
from tests.integration.processor.helpers import CHAPTER_SCHEMA, OUTLINE_SCHEMA, js_processor, schema
from tests.support.sdk import SignUp


async def test_task5_text_expansion_runs_as_a_job_and_its_output_has_the_output_schema(sign_up: SignUp) -> None:
    ink = await sign_up("writer")
    outline_id = await schema(ink, "outline-schema", OUTLINE_SCHEMA)
    chapter_id = await schema(ink, "chapter-schema", CHAPTER_SCHEMA)
    processor = await ink.register_processor("test-expander", "text-expansion", {"model": "gpt-3.5-turbo"},
                                             input_schema=outline_id, output_schema=chapter_id)
    assert (processor.type, processor.input_schema, processor.output_schema) == ("text-expansion", outline_id,
                                                                                  chapter_id)
    blob = await ink.create_blob({"title": "Chapter 1", "outline": "Hero discovers mysterious artifact"},
                                 schema_id=outline_id, processor_id=processor.id)

    job = await ink.request_job(processor.id, blob.id)
    assert job.status == "pending" and job.input_blob_id == blob.id and job.processor_id == processor.id

    done = await ink.wait_for_job(job.id, timeout=30)
    assert done.status == "completed", done
    assert done.output_blob_id and done.attempts == 1 and done.error is None
    assert done.started_at is not None and done.finished_at is not None
    output = await ink.get_blob(done.output_blob_id)
    assert output.schema_id == chapter_id
    assert output.processor_id == processor.id
    assert output.data["title"] == "Chapter 1"
    assert "artifact" in output.data["content"]
    for term in ("Hero", "discovers", "mysterious", "artifact"):
        assert term in output.data["content"]
    assert (await ink.validate(chapter_id, output.data)).valid


async def test_task11_an_async_processor_is_eventually_consistent(sign_up: SignUp) -> None:
    ink: InkstreamClient = await sign_up("consistency")
    blob = await ink.create_blob({"content": "Original content"})
    processor_id = await js_processor(
        ink, "function process(data) { return {processed: true, content: 'processed: ' + data.content}; }"
    )
    job = await ink.request_job(processor_id, blob.id)
    assert job.status == "pending"

    output = None
    for _ in range(300):  # poll, as the seed does (its 10 polls a second apart, here faster)
        current = await ink.get_job(job.id)  # read-your-writes: the job is there; its status is eventual
        if current.status == "completed":
            ink.observe_position(current.position)  # read what the job made: its output blob
            output = await ink.get_blob(current.output_blob_id)
            break
        await asyncio.sleep(0.1)
    assert output is not None
    assert "processed" in output.data
    assert output.data["content"] == "processed: Original content"
    assert (await ink.get_blob(blob.id)).data == {"content": "Original content"}  # the input is untouched


async def test_a_jobs_pushes_reach_a_subscriber_and_wait_for_job_follows_them(sign_up: SignUp) -> None:
    ink: InkstreamClient = await sign_up("pushes")
    processor_id = await js_processor(ink, "function process(d) { var t = Date.now() + 300; while (Date.now() < t) {} "
                                           "return {done: d.n}; }")
    job = await ink.request_job(processor_id, (await ink.create_blob({"n": 1})).id)
    seen = []
    async for event in ink.subscribe(job_id=job.id, since=job.position):
        seen.append(event)
        if event.type == "job.completed":
            break
    assert [e.type for e in seen] == ["job.started", "job.completed"]
    assert seen[-1].data["status"] == "completed" and seen[-1].data["output_blob_id"]
    assert seen[-1].data["input_blob_id"] == job.input_blob_id

    second = await ink.request_job(processor_id, (await ink.create_blob({"n": 2})).id)
    done = await ink.wait_for_job(second.id)  # through the live updates
    assert done.status == "completed"
    assert (await ink.get_blob(done.output_blob_id)).data == {"done": 2}
    polled = await ink.wait_for_job((await ink.request_job(processor_id, (await ink.create_blob({"n": 3})).id)).id,
                                    live=False)
    assert polled.status == "completed"
