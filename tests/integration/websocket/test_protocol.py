"""``/ws`` authentication, ownership and bad input: who gets in, and what an error costs.

Auth failures close the connection (4401); every other mistake is an
``error`` with a code and the connection goes on (checked by subscribing
successfully afterwards).
"""

from __future__ import annotations

import asyncio
import time

import aiohttp
import pytest

from tests.integration.websocket.live import Live
from tests.support.sdk import SignUp
from tests.support.system import RunningSystem


async def test_a_bad_token_is_an_error_and_close_4401(system: RunningSystem, http: aiohttp.ClientSession) -> None:
    live = await Live.open(http, system.base_url)
    await live.send("auth", token="not-a-jwt")
    code, seen = await live.closed()
    assert code == 4401
    assert [m["type"] for m in seen] == ["error"] and seen[0]["data"]["code"] == "unauthorized"


async def test_an_expired_token_is_token_expired_and_close_4401(
    system: RunningSystem, http: aiohttp.ClientSession, sign_up: SignUp
) -> None:
    author = await sign_up("ws")
    assert author.user_id is not None
    expired = system.services.tokens.issue(author.user_id, now=time.time() - 7200).token
    live = await Live.open(http, system.base_url)
    await live.send("auth", token=expired)
    code, seen = await live.closed()
    assert code == 4401
    assert seen[0]["type"] == "error" and seen[0]["data"]["code"] == "token_expired"


@pytest.mark.parametrize("first", [
    '{"type": "subscribe", "data": {"bucket_id": "0190a0a0-0000-7000-8000-000000000000"}}',
    "not json",
    '{"type": "auth", "data": {}}',
])
async def test_anything_but_auth_first_is_an_error_and_a_close(
    system: RunningSystem, http: aiohttp.ClientSession, first: str
) -> None:
    live = await Live.open(http, system.base_url)
    await live.ws.send_str(first)
    code, seen = await live.closed()
    assert code == 4401
    assert [m["type"] for m in seen] == ["error"] and seen[0]["data"]["code"] == "unauthorized"


async def test_someone_elses_bucket_is_forbidden_and_the_connection_stays_open(
    system: RunningSystem, http: aiohttp.ClientSession, sign_up: SignUp
) -> None:
    owner, stranger = await sign_up("owner"), await sign_up("stranger")
    theirs = await owner.create_bucket("private", "folder")
    mine = await stranger.create_bucket("mine", "folder")
    live = await Live.open(http, system.base_url, stranger.token)
    await live.send("subscribe", bucket_id=theirs.id)
    refused = await live.next()
    assert refused["type"] == "error"
    assert refused["data"]["code"] == "forbidden" and refused["data"]["bucket_id"] == theirs.id
    assert refused["data"]["message"].startswith("forbidden")
    await owner.create_blob({"secret": True}, bucket_ids=[theirs.id])
    await live.subscribe(bucket_id=mine.id)  # still open, still working
    blob = await stranger.create_blob({"mine": True}, bucket_ids=[mine.id])
    push = await live.next()
    assert (push["type"], push["data"]["blob_id"]) == ("blob.created", blob.id)  # and nothing of the owner's


async def test_bad_input_is_an_error_with_a_code_and_the_connection_stays_open(
    system: RunningSystem, http: aiohttp.ClientSession, sign_up: SignUp
) -> None:
    author = await sign_up("ws")
    bucket = await author.create_bucket("b", "folder")
    live = await Live.open(http, system.base_url, author.token)
    end = await system.services.store.last_position()
    unknown = "0190a0a0-0000-7000-8000-000000000000"
    cases: list[tuple[str, str]] = [
        ("{not json", "bad_request"),
        ('["a", "list"]', "bad_request"),
        ('{"type": "dance", "data": {}}', "bad_request"),
        ('{"type": "subscribe", "data": {"bucket_id": "../../etc"}}', "bad_request"),
        ('{"type": "subscribe", "data": {"bucket_id": "ink.>"}}', "bad_request"),
        ('{"type": "subscribe", "data": {}}', "bad_request"),
        (f'{{"type": "subscribe", "data": {{"bucket_id": "{bucket.id}", "job_id": "{unknown}"}}}}', "bad_request"),
        (f'{{"type": "subscribe", "data": {{"bucket_id": "{bucket.id}", "since": -1}}}}', "bad_request"),
        (f'{{"type": "subscribe", "data": {{"bucket_id": "{bucket.id}", "since": {end + 1000}}}}}', "bad_request"),
        (f'{{"type": "subscribe", "data": {{"bucket_id": "{bucket.id}", "since": "1"}}}}', "bad_request"),
        (f'{{"type": "subscribe", "data": {{"bucket_id": "{bucket.id}", "colour": "red"}}}}', "bad_request"),
        (f'{{"type": "subscribe", "data": {{"bucket_id": "{unknown}"}}}}', "not_found"),
        (f'{{"type": "subscribe", "data": {{"job_id": "{unknown}"}}}}', "not_found"),
        (f'{{"type": "auth", "data": {{"token": "{author.token}"}}}}', "bad_request"),
    ]
    for raw, code in cases:
        await live.ws.send_str(raw)
        answer = await live.next()
        assert answer["type"] == "error" and answer["data"]["code"] == code, (raw, answer)
    await live.ws.send_bytes(b"\x00\x01")
    answer = await live.next()
    assert (answer["type"], answer["data"]["code"]) == ("error", "bad_request")

    await live.subscribe(bucket_id=bucket.id)
    await live.send("subscribe", bucket_id=bucket.id)
    again = await live.next()
    assert (again["type"], again["data"]["code"]) == ("error", "conflict")
    blob = await author.create_blob({"still": "open"}, bucket_ids=[bucket.id])
    push = await live.next()
    assert (push["type"], push["data"]["blob_id"]) == ("blob.created", blob.id)

    await live.send("unsubscribe", bucket_id=bucket.id)
    assert (await live.next())["type"] == "unsubscribed"
    await author.create_blob({"after": "unsubscribe"}, bucket_ids=[bucket.id])
    await live.silent(0.3)


async def test_a_flood_of_messages_is_rate_limited_like_http(
    system: RunningSystem, http: aiohttp.ClientSession, sign_up: SignUp
) -> None:
    author = await sign_up("ws")
    live = await Live.open(http, system.base_url, author.token)
    burst = system.services.settings.rate_limit_burst
    extra = 200
    for _ in range(burst + extra):
        await live.send("unsubscribe", bucket_id="0190a0a0-0000-7000-8000-000000000000")
    answers = await live.take(burst + extra)
    limited = [a for a in answers if a["type"] == "error" and a["data"]["code"] == "rate_limited"]
    assert limited, answers[-3:]
    assert limited[0]["data"]["retry_after"] > 0
    assert len(limited) <= extra  # the burst itself goes through
    assert answers[0]["type"] == "unsubscribed"


async def test_a_deleted_bucket_ends_its_subscriptions(
    system: RunningSystem, http: aiohttp.ClientSession, sign_up: SignUp
) -> None:
    author = await sign_up("ws")
    bucket = await author.create_bucket("short-lived", "folder")
    live = await Live.open(http, system.base_url, author.token)
    await live.subscribe(bucket_id=bucket.id)
    deleted = await author.delete_bucket(bucket.id)
    ended = await live.next()
    assert ended == {"type": "unsubscribed",
                     "data": {"bucket_id": bucket.id, "position": deleted.position, "reason": "deleted"}}
    await live.send("subscribe", bucket_id=bucket.id)
    gone = await live.next()
    assert (gone["type"], gone["data"]["code"]) == ("error", "not_found")


async def test_a_connection_ends_when_its_token_expires(
    system: RunningSystem, http: aiohttp.ClientSession, sign_up: SignUp
) -> None:
    """A token is checked once, at auth: the connection ends at its expiry (4401 ``token_expired``);
    the client logs in again and resumes with ``since``. SSE streams end the same way."""
    author = await sign_up("ws")
    assert author.user_id is not None
    lifetime = system.services.settings.jwt_lifetime_seconds
    short = system.services.tokens.issue(author.user_id, now=time.time() - lifetime + 3).token
    bucket = await author.create_bucket("b", "folder")
    live = await Live.open(http, system.base_url, short)
    await live.subscribe(bucket_id=bucket.id)
    async with http.get("/v1/events", params={"bucket_id": bucket.id},
                        headers={"Authorization": f"Bearer {short}"}) as response:
        assert response.status == 200
        code, seen = await live.closed(timeout=10)
        assert code == 4401 and seen[-1]["data"]["code"] == "token_expired"
        async with asyncio.timeout(5):
            await response.content.read()  # the stream ends too
