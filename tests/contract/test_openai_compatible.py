"""The OpenAI-compatible client against a local server speaking that wire format."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from adapters.processors.base import HttpSessions, ProcessorFailure
from adapters.processors.openai_compatible import ChatCompletions, completions_url
from tests.support.chat_server import ChatServer, content, raw, slow, status


@pytest.fixture
async def server() -> AsyncIterator[ChatServer]:
    chat = ChatServer()
    await chat.start()
    try:
        yield chat
    finally:
        await chat.stop()


@pytest.fixture
async def http() -> AsyncIterator[HttpSessions]:
    sessions = HttpSessions()
    try:
        yield sessions
    finally:
        await sessions.close()


def client(server: ChatServer, http: HttpSessions, **options: float) -> ChatCompletions:
    return ChatCompletions(server.url, http, api_key="sk-test", backoff=0.05, **options)  # type: ignore[arg-type]


MESSAGES = [{"role": "user", "content": "Outline: a"}]


def test_the_url_is_the_chat_completions_route_of_the_base() -> None:
    assert completions_url("http://h:1") == "http://h:1/v1/chat/completions"
    assert completions_url("http://h:1/v1/") == "http://h:1/v1/chat/completions"


async def test_a_429_with_retry_after_is_waited_out_then_the_answer_is_used(server: ChatServer, http: HttpSessions) -> None:
    server.script = [status(429, "slow down", {"Retry-After": "1"}), content("Prose.")]
    text = await client(server, http).complete("gpt-test", MESSAGES)
    assert text == "Prose."
    assert len(server.requests) == 2
    assert server.arrived[1] - server.arrived[0] >= 0.9, "Retry-After was not honoured"
    assert server.requests[0] == {"model": "gpt-test", "messages": MESSAGES}
    assert server.headers[0]["Authorization"] == "Bearer sk-test"


async def test_5xx_answers_are_retried_then_reported(server: ChatServer, http: HttpSessions) -> None:
    server.script = [status(503, "overloaded")]
    with pytest.raises(ProcessorFailure) as caught:
        await client(server, http, max_retries=2).complete("m", MESSAGES)
    assert caught.value.code == "upstream_error" and caught.value.retryable
    assert "answered 503" in caught.value.message and "overloaded" in caught.value.message
    assert "3 attempts" in caught.value.message and len(server.requests) == 3


async def test_other_4xx_answers_are_not_retried(server: ChatServer, http: HttpSessions) -> None:
    server.script = [status(401, "bad key")]
    with pytest.raises(ProcessorFailure) as caught:
        await client(server, http, max_retries=3).complete("m", MESSAGES)
    assert not caught.value.retryable and "answered 401" in caught.value.message and len(server.requests) == 1


async def test_no_answer_within_the_request_timeout_is_retried_then_reported(
    server: ChatServer, http: HttpSessions
) -> None:
    server.script = [slow(5)]
    with pytest.raises(ProcessorFailure) as caught:
        await client(server, http, request_timeout=0.3, max_retries=1).complete("m", MESSAGES)
    assert caught.value.code == "upstream_error"
    assert "no answer within 0.3 s (2 attempts)" in caught.value.message


@pytest.mark.parametrize(
    ("reply", "why"),
    [
        (raw("this is not json"), "not JSON"),
        (raw('{"choices": []}'), "no choices"),
        (raw('{"choices": [{"message": {"content": 42}}]}'), "not a non-empty string"),
        (content("   "), "not a non-empty string"),
    ],
)
async def test_a_malformed_answer_says_what_was_wrong(server: ChatServer, http: HttpSessions, reply, why) -> None:  # type: ignore[no-untyped-def]
    server.script = [reply]
    with pytest.raises(ProcessorFailure) as caught:
        await client(server, http).complete("m", MESSAGES)
    assert caught.value.code == "upstream_error" and caught.value.retryable
    assert "malformed answer" in caught.value.message and why in caught.value.message


async def test_cancelling_the_call_closes_the_connection(server: ChatServer, http: HttpSessions) -> None:
    server.script = [slow(10)]
    task = asyncio.create_task(client(server, http).complete("m", MESSAGES))
    while not server.requests:
        await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    for _ in range(100):
        if server.disconnected:
            break
        await asyncio.sleep(0.02)
    assert server.disconnected == 1
