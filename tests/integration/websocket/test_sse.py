"""``GET /v1/events``: the same pushes as server-sent events, resumable with ``Last-Event-ID``."""

from __future__ import annotations

import aiohttp
import pytest

from tests.integration.websocket.sse import EventStream
from tests.support.sdk import SignUp
from tests.support.system import RunningSystem

UNKNOWN = "0190a0a0-0000-7000-8000-000000000000"


async def test_a_bucket_stream_sends_pushes_with_their_position_as_id(
    system: RunningSystem, http: aiohttp.ClientSession, sign_up: SignUp
) -> None:
    ink = await sign_up("sse")
    bucket = await ink.create_bucket("b", "folder")
    headers = {"Authorization": f"Bearer {ink.token}"}
    async with http.get("/v1/events", params={"bucket_id": bucket.id}, headers=headers) as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/event-stream")
        stream = EventStream(response)
        opened = await stream.next()
        assert opened.event == "subscribed" and opened.data["bucket_id"] == bucket.id
        blob = await ink.create_blob({"x": 1}, bucket_ids=[bucket.id])
        updated = await ink.update_blob(blob.id, {"x": 2})
        created, changed = await stream.take(2)
    assert (created.id, created.event) == (str(blob.position), "blob.created")
    assert created.data["bucket_id"] == bucket.id and created.data["blob"]["data"] == {"x": 1}
    assert (changed.id, changed.event, changed.data["blob"]["data"]) == (str(updated.position), "blob.updated", {"x": 2})


async def test_a_reconnect_with_last_event_id_resumes_with_no_gap_and_no_duplicate(
    system: RunningSystem, http: aiohttp.ClientSession, sign_up: SignUp
) -> None:
    ink = await sign_up("sse")
    bucket = await ink.create_bucket("b", "folder")
    headers = {"Authorization": f"Bearer {ink.token}"}
    async with http.get("/v1/events", params={"bucket_id": bucket.id}, headers=headers) as response:
        stream = EventStream(response)
        await stream.next()  # subscribed
        first = await ink.create_blob({"i": 0}, bucket_ids=[bucket.id])
        seen = await stream.next()
        assert seen.id == str(first.position)
    # disconnected: these happen while nobody listens
    missed = [await ink.create_blob({"i": i}, bucket_ids=[bucket.id]) for i in range(1, 4)]
    resume = {**headers, "Last-Event-ID": seen.id or ""}
    async with http.get("/v1/events", params={"bucket_id": bucket.id, "since": "0"}, headers=resume) as response:
        stream = EventStream(response)
        opened = await stream.next()
        assert (opened.event, opened.data["position"]) == ("subscribed", first.position)
        replayed = await stream.take(3)
        assert [(e.event, e.id) for e in replayed] == [("blob.created", str(b.position)) for b in missed]
        caught_up = await stream.next()
        assert caught_up.event == "caught_up" and int(caught_up.id or 0) >= missed[-1].position
        live = await ink.create_blob({"i": 4}, bucket_ids=[bucket.id])
        assert (await stream.next()).id == str(live.position)


async def test_since_in_the_query_resumes_too(
    system: RunningSystem, http: aiohttp.ClientSession, sign_up: SignUp
) -> None:
    ink = await sign_up("sse")
    bucket = await ink.create_bucket("b", "folder")
    before = await ink.create_blob({"i": 0}, bucket_ids=[bucket.id])
    after = await ink.create_blob({"i": 1}, bucket_ids=[bucket.id])
    headers = {"Authorization": f"Bearer {ink.token}"}
    async with http.get("/v1/events", params={"bucket_id": bucket.id, "since": str(before.position)},
                        headers=headers) as response:
        stream = EventStream(response)
        assert (await stream.next()).event == "subscribed"
        assert [(e.event, e.id) for e in await stream.take(2)] == [("blob.created", str(after.position)),
                                                                     ("caught_up", str(after.position))]


async def test_refusals_are_problem_answers(system: RunningSystem, http: aiohttp.ClientSession,
                                            sign_up: SignUp) -> None:
    owner, stranger = await sign_up("sse"), await sign_up("sse")
    theirs = await owner.create_bucket("b", "folder")
    headers = {"Authorization": f"Bearer {stranger.token}"}
    end = await system.services.store.last_position()
    cases: list[tuple[dict[str, str], dict[str, str], int, str]] = [
        ({"bucket_id": theirs.id}, headers, 403, "forbidden"),
        ({"bucket_id": UNKNOWN}, headers, 404, "not_found"),
        ({"job_id": UNKNOWN}, headers, 404, "not_found"),
        ({"bucket_id": "ink.>"}, headers, 400, "bad_request"),
        ({}, headers, 400, "bad_request"),
        ({"bucket_id": theirs.id, "job_id": UNKNOWN}, headers, 400, "bad_request"),
        ({"bucket_id": theirs.id, "since": str(end + 1000)}, {"Authorization": f"Bearer {owner.token}"}, 400,
         "bad_request"),
        ({"bucket_id": theirs.id, "since": "-1"}, {"Authorization": f"Bearer {owner.token}"}, 400, "bad_request"),
        ({"bucket_id": theirs.id}, {"Authorization": f"Bearer {owner.token}", "Last-Event-ID": "x"}, 400,
         "bad_request"),
        ({"bucket_id": theirs.id}, {}, 401, "unauthorized"),
    ]
    for params, hdrs, status, code in cases:
        async with http.get("/v1/events", params=params, headers=hdrs) as response:
            body = await response.json(content_type=None)
            assert (response.status, body["code"]) == (status, code), (params, body)
            assert response.headers["Content-Type"].startswith("application/problem+json")


@pytest.mark.parametrize("path", ["/ws"])
async def test_ws_without_an_upgrade_is_a_bad_request(system: RunningSystem, http: aiohttp.ClientSession,
                                                      path: str) -> None:
    async with http.get(path) as response:
        assert response.status == 400
        assert (await response.json(content_type=None))["code"] == "bad_request"
