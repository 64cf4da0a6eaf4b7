"""text-expansion against an OpenAI-compatible endpoint (a local server speaking that wire format)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.integration.processor.helpers import CHAPTER_SCHEMA, OUTLINE_SCHEMA, eventually, isolated_system, schema, user
from tests.support.chat_server import ChatServer, content, raw, slow, status
from tests.support.servers import Database

OUTLINE = {"title": "Chapter 1", "outline": "Hero discovers mysterious artifact"}
ANSWER = "In the ruins the hero discovers a mysterious artifact, humming with an old light."


@pytest.fixture
async def chat() -> AsyncIterator[ChatServer]:
    server = ChatServer()
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


async def test_the_model_is_asked_retried_on_429_and_a_bad_answer_fails_the_job(
    chat: ChatServer, database: Database
) -> None:
    async with isolated_system(database, llm_base_url=chat.url, llm_max_retries=2, job_retry_backoff_seconds=0.1) as (
        system, _
    ):
        ink = await user(system)
        outline_id = await schema(ink, "outline", OUTLINE_SCHEMA)
        chapter_id = await schema(ink, "chapter", CHAPTER_SCHEMA)
        expander = await ink.register_processor(
            "expander", "text-expansion", {"model": "gpt-test", "prompt": "Write {title}: {outline}"},
            input_schema=outline_id, output_schema=chapter_id, limits={"max_attempts": 2},
        )  # fmt: skip
        blob = await ink.create_blob(OUTLINE, schema_id=outline_id)

        chat.script = [status(429, "rate limited", {"Retry-After": "1"}), content(ANSWER)]
        done = await ink.wait_for_job((await ink.request_job(expander.id, blob.id)).id)
        assert done.status == "completed" and done.attempts == 1, done
        output = await ink.get_blob(done.output_blob_id)
        assert output.schema_id == chapter_id and output.data == {"title": "Chapter 1", "content": ANSWER}
        assert len(chat.requests) == 2 and chat.arrived[1] - chat.arrived[0] >= 0.9
        assert chat.requests[0]["model"] == "gpt-test"
        assert chat.requests[0]["messages"][-1] == {"role": "user",
                                                   "content": "Write Chapter 1: Hero discovers mysterious artifact"}

        chat.requests.clear()
        chat.script = [raw("<html>upstream proxy error</html>")]
        failed = await ink.wait_for_job((await ink.request_job(expander.id, blob.id)).id)
        assert failed.status == "failed" and failed.attempts == 2, failed
        assert failed.error is not None and failed.error.code == "upstream_error"
        assert "malformed answer" in failed.error.message and "upstream proxy error" in failed.error.message
        assert failed.output_blob_id is None and len(chat.requests) == 2  # one per attempt (a 200 is not retried)

        chat.script = [content("")]
        empty = await ink.wait_for_job((await ink.request_job(expander.id, blob.id)).id)
        assert empty.status == "failed" and empty.error is not None and empty.error.code == "upstream_error"

        strict_id = await schema(ink, "short", {"type": "object", "required": ["content"],
                                                "properties": {"content": {"type": "string", "maxLength": 10}}})
        strict = await ink.register_processor("strict", "text-expansion", {"model": "gpt-test"},
                                              output_schema=strict_id, limits={"max_attempts": 1})
        chat.script = [content(ANSWER)]
        unfit = await ink.wait_for_job((await ink.request_job(strict.id, blob.id)).id)
        assert unfit.status == "failed" and unfit.error is not None and unfit.error.code == "upstream_error"
        assert "does not satisfy" in unfit.error.message and "/content" in unfit.error.message


async def test_a_timeout_and_a_cancel_stop_the_model_call(chat: ChatServer, database: Database) -> None:
    async with isolated_system(database, llm_base_url=chat.url, llm_max_retries=0) as (system, _):
        ink = await user(system)
        blob = await ink.create_blob(OUTLINE)
        chat.script = [slow(30)]
        hasty = await ink.register_processor("hasty", "text-expansion", {"model": "m"},
                                             limits={"timeout_seconds": 1, "max_attempts": 1})
        timed_out = await ink.wait_for_job((await ink.request_job(hasty.id, blob.id)).id, timeout=30)
        assert timed_out.status == "failed" and timed_out.error is not None
        assert timed_out.error.code == "timeout" and "1 s" in timed_out.error.message
        await eventually(lambda: _at_least(chat, 1), timeout=5)  # the HTTP call was closed, not left running

        patient = await ink.register_processor("patient", "text-expansion", {"model": "m"})
        job = await ink.request_job(patient.id, blob.id)
        await eventually(lambda: _requests_at_least(chat, 2), timeout=10)
        cancelled = await ink.cancel_job(job.id)
        assert cancelled.status == "cancelled"
        await eventually(lambda: _at_least(chat, 2), timeout=5)
        assert (await ink.get_job(job.id)).status == "cancelled"


async def _at_least(chat: ChatServer, n: int) -> bool:
    return chat.disconnected >= n


async def _requests_at_least(chat: ChatServer, n: int) -> bool:
    return len(chat.requests) >= n
