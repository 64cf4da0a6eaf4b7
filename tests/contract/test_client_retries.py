"""The SDK's delivery rules against a scripted local HTTP server.

The fake server stands in for the network only (503s, dropped connections,
slow answers, problem bodies); it plays a script of answers and records every
request it received, so the tests can check what the client sent on each
attempt.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from adapters.client import (
    UNSET,
    BadRequestError,
    ConflictError,
    ForbiddenError,
    InkstreamClient,
    InkstreamError,
    NotFoundError,
    PayloadTooLargeError,
    PreconditionFailedError,
    RateLimitedError,
    TokenExpiredError,
    UnauthorizedError,
    UnavailableError,
    ValidationFailedError,
)
from adapters.http.models_content import BlobPage, BucketChanged

DROP = "drop"  # close the connection without answering


@dataclass(frozen=True)
class Slow:
    seconds: float


@dataclass(frozen=True)
class Reply:
    status: int = 200
    body: Any = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Seen:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes

    @property
    def key(self) -> str | None:
        return self.headers.get("Idempotency-Key")


BUCKET: dict[str, Any] = {
    "id": "bkt-1", "name": "Drafts", "type": "folder", "parent_id": None, "owner_id": "usr-1",
    "created_at": "2025-01-01T00:00:00Z", "updated_at": "2025-01-01T00:00:00Z", "version": 1,
}
BLOB: dict[str, Any] = {
    "id": "blb-1", "owner_id": "usr-1", "schema_id": None, "processor_id": None, "data": {"a": 1},
    "bucket_ids": [], "version": 1, "created_at": "2025-01-01T00:00:00Z", "updated_at": "2025-01-01T00:00:00Z",
}


def created(payload: dict[str, Any], position: int, status: int = 201) -> Reply:
    return Reply(status, {**payload, "position": position}, {"X-Position": str(position), "ETag": '"1"'})


def problem(code: str, status: int, detail: str, errors: list[dict[str, str]] | None = None,
            headers: dict[str, str] | None = None) -> Reply:
    body: dict[str, Any] = {"type": f"https://inkstream.dev/problems/{code}", "title": code, "status": status,
                            "code": code, "detail": detail}
    if errors is not None:
        body["errors"] = errors
    return Reply(status, body, {"Content-Type": "application/problem+json", **(headers or {})})


UNAVAILABLE = problem("unavailable", 503, "unavailable: the log is unreachable", headers={"Retry-After": "0"})


class FakeApi:
    def __init__(self) -> None:
        self.script: list[Any] = []
        self.default: Reply = Reply(200, {})
        self.seen: list[Seen] = []

    def play(self, *steps: Any, then: Reply | None = None) -> None:
        self.script = list(steps)
        if then is not None:
            self.default = then

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.seen.append(Seen(request.method, request.path, dict(request.query), dict(request.headers),
                              await request.read()))
        step = self.script.pop(0) if self.script else self.default
        if step == DROP:
            assert request.transport is not None
            request.transport.close()
            return web.Response()
        if isinstance(step, Slow):
            await asyncio.sleep(step.seconds)
            step = self.default
        headers = {"Content-Type": "application/json", **step.headers}
        content_type = headers.pop("Content-Type")
        return web.Response(status=step.status, body=orjson.dumps(step.body), content_type=content_type,
                            headers=headers)


@pytest.fixture
async def fake() -> AsyncIterator[tuple[FakeApi, str]]:
    api = FakeApi()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", api.handle)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        yield api, str(server.make_url("")).rstrip("/")
    finally:
        await server.close()


def client(base_url: str, **kw: Any) -> InkstreamClient:
    kw.setdefault("backoff", 0.001)
    kw.setdefault("max_retry_after", 0.05)
    kw.setdefault("token", "tkn")
    return InkstreamClient(base_url, **kw)


# -- retries -----------------------------------------------------------------------------------


async def test_post_is_retried_with_the_same_idempotency_key_through_503s_and_drops(fake: tuple[FakeApi, str]) -> None:
    api, url = fake
    api.play(UNAVAILABLE, DROP, UNAVAILABLE, DROP, then=created(BUCKET, 17))
    async with client(url, retries=5) as ink:
        bucket = await ink.create_bucket("Drafts", "folder")
    assert isinstance(bucket, BucketChanged) and bucket.id == "bkt-1" and bucket.position == 17
    assert len(api.seen) == 5
    keys = {s.key for s in api.seen}
    assert len(keys) == 1 and None not in keys, keys
    assert {s.body for s in api.seen} == {orjson.dumps({"name": "Drafts", "type": "folder"})}
    assert all(s.headers["Authorization"] == "Bearer tkn" for s in api.seen)
    assert ink.last_position == 17


async def test_every_post_gets_its_own_key_unless_the_caller_gives_one(fake: tuple[FakeApi, str]) -> None:
    api, url = fake
    api.play(then=created(BUCKET, 1))
    async with client(url) as ink:
        await ink.create_bucket("a", "folder")
        await ink.create_bucket("a", "folder")
        api.play(UNAVAILABLE)
        await ink.create_bucket("a", "folder", idempotency_key="mine-1")
    assert [s.key for s in api.seen][2:] == ["mine-1", "mine-1"]
    assert api.seen[0].key != api.seen[1].key


async def test_gives_up_after_retries_with_unavailable(fake: tuple[FakeApi, str]) -> None:
    api, url = fake
    api.play(then=UNAVAILABLE)
    async with client(url, retries=3) as ink:
        with pytest.raises(UnavailableError) as caught:
            await ink.create_blob({"a": 1})
    err = caught.value
    assert err.status == 503 and err.code == "unavailable" and err.detail.startswith("unavailable")
    assert err.retry_after == 0
    assert len(api.seen) == 4 and len({s.key for s in api.seen}) == 1


async def test_connection_errors_give_up_as_unavailable_without_status(fake: tuple[FakeApi, str]) -> None:
    api, url = fake
    api.default = DROP  # type: ignore[assignment]
    async with client(url, retries=2) as ink:
        with pytest.raises(UnavailableError) as caught:
            await ink.create_blob({"a": 1})
    assert caught.value.status is None and caught.value.code == "unavailable"
    assert isinstance(caught.value.__cause__, aiohttp.ClientConnectionError)
    assert len(api.seen) == 3 and len({s.key for s in api.seen}) == 1


async def test_refused_connection_is_retried_then_unavailable() -> None:
    from tests.support.system import free_port

    start = time.monotonic()
    async with client(f"http://127.0.0.1:{free_port()}", retries=2, backoff=0.01) as ink:
        with pytest.raises(UnavailableError) as caught:
            await ink.health()
    assert "3 attempt" in caught.value.detail
    assert time.monotonic() - start < 5


async def test_a_timeout_is_retried_with_the_same_key(fake: tuple[FakeApi, str]) -> None:
    api, url = fake
    api.play(Slow(1.0), then=created(BLOB, 5))
    async with client(url, timeout=0.2) as ink:
        blob = await ink.create_blob({"a": 1})
    assert blob.id == "blb-1" and len(api.seen) == 2 and api.seen[0].key == api.seen[1].key


async def test_retry_after_is_honoured_and_capped(fake: tuple[FakeApi, str]) -> None:
    api, url = fake
    wait = problem("unavailable", 503, "unavailable: x", headers={"Retry-After": "0.4"})
    api.play(wait, then=created(BUCKET, 2))
    async with client(url, max_retry_after=30) as ink:
        start = time.monotonic()
        await ink.create_bucket("a", "folder")
        assert time.monotonic() - start >= 0.4

        long_wait = problem("unavailable", 503, "unavailable: x", headers={"Retry-After": "120"})
        api.play(long_wait)
        ink.max_retry_after = 0.05
        start = time.monotonic()
        await ink.create_bucket("a", "folder")
        assert time.monotonic() - start < 2


async def test_put_patch_delete_are_retried_and_carry_if_match(fake: tuple[FakeApi, str]) -> None:
    api, url = fake
    async with client(url) as ink:
        api.play(UNAVAILABLE, DROP, then=created(BLOB, 9, status=200))
        await ink.update_blob("blb-1", {"a": 2}, if_match=3)
        api.play(UNAVAILABLE, then=created(BUCKET, 10, status=200))
        await ink.update_bucket("bkt-1", name="b", if_match='"1"')
        api.play(DROP, then=created({**BLOB, "deleted": True}, 11, status=200))
        await ink.delete_blob("blb-1")
    methods = [(s.method, s.headers.get("If-Match"), s.key) for s in api.seen]
    assert methods == [("PUT", '"3"', None)] * 3 + [("PATCH", '"1"', None)] * 2 + [("DELETE", None, None)] * 2
    assert ink.last_position == 11


async def test_429_is_not_retried_unless_asked(fake: tuple[FakeApi, str]) -> None:
    api, url = fake
    limited = problem("rate_limited", 429, "rate limit exceeded: 100/min", headers={"Retry-After": "0"})
    api.play(limited, then=created(BUCKET, 3))
    async with client(url) as ink:
        with pytest.raises(RateLimitedError) as caught:
            await ink.create_bucket("a", "folder")
    assert caught.value.retry_after == 0 and caught.value.status == 429 and len(api.seen) == 1

    api.play(limited, limited)
    async with client(url, retry_rate_limited=True) as ink:
        await ink.create_bucket("a", "folder")
    assert len(api.seen) == 4 and api.seen[1].key == api.seen[2].key == api.seen[3].key


async def test_non_retryable_errors_are_not_retried(fake: tuple[FakeApi, str]) -> None:
    api, url = fake
    api.play(problem("conflict", 409, "conflict: exists"), then=created(BUCKET, 1))
    async with client(url) as ink:
        with pytest.raises(ConflictError):
            await ink.create_bucket("a", "folder")
    assert len(api.seen) == 1


# -- problem codes -------------------------------------------------------------------------------

CODES = [
    ("bad_request", 400, BadRequestError),
    ("unauthorized", 401, UnauthorizedError),
    ("token_expired", 401, TokenExpiredError),
    ("forbidden", 403, ForbiddenError),
    ("not_found", 404, NotFoundError),
    ("conflict", 409, ConflictError),
    ("precondition_failed", 412, PreconditionFailedError),
    ("payload_too_large", 413, PayloadTooLargeError),
    ("validation_failed", 422, ValidationFailedError),
    ("rate_limited", 429, RateLimitedError),
    ("unavailable", 503, UnavailableError),
]


@pytest.mark.parametrize(("code", "status", "cls"), CODES, ids=[c[0] for c in CODES])
async def test_each_problem_code_raises_its_class(fake: tuple[FakeApi, str], code: str, status: int,
                                                  cls: type[InkstreamError]) -> None:
    api, url = fake
    errors = [{"path": "/data/title", "message": "title is required"}, {"path": "/data/x", "message": "bad"}]
    detail = code.replace("_", " ") + ": something about it"
    api.play(then=problem(code, status, detail, errors=errors, headers={"Retry-After": "2"}))
    async with client(url, retries=0) as ink:
        with pytest.raises(InkstreamError) as caught:
            await ink.get_bucket("bkt-1")
    err = caught.value
    assert type(err) is cls
    assert (err.status, err.code, err.detail, err.errors, err.retry_after) == (status, code, detail, errors, 2.0)
    assert detail in str(err) and "/data/title: title is required" in str(err)


async def test_unknown_codes_fall_back_to_the_status_then_the_base_class(fake: tuple[FakeApi, str]) -> None:
    api, url = fake
    async with client(url, retries=0) as ink:
        api.play(problem("brand_new", 404, "not found: but new"))
        with pytest.raises(NotFoundError) as by_status:
            await ink.me()
        assert by_status.value.code == "brand_new" and by_status.value.status == 404

        api.play(Reply(500, {"code": "internal", "detail": "internal error: reference abc", "status": 500}))
        with pytest.raises(InkstreamError) as internal:
            await ink.me()
        assert type(internal.value) is InkstreamError
        assert (internal.value.status, internal.value.code) == (500, "internal")

        api.play(Reply(418, "I'm a teapot", {"Content-Type": "text/plain"}))
        with pytest.raises(InkstreamError) as teapot:
            await ink.me()
        assert type(teapot.value) is InkstreamError and teapot.value.status == 418


# -- read-your-writes ------------------------------------------------------------------------------


async def test_queries_carry_the_last_command_position_as_min_position(fake: tuple[FakeApi, str]) -> None:
    api, url = fake
    page = {"items": [BLOB], "next_cursor": None}
    async with client(url) as ink:
        api.play(Reply(200, page))
        await ink.list_blobs()
        assert "min_position" not in api.seen[-1].query and ink.last_position is None

        api.play(created(BLOB, 42))
        await ink.create_blob({"a": 1})
        api.play(Reply(200, page))
        listed = await ink.list_blobs(bucket_id="bkt-1")
        assert isinstance(listed, BlobPage) and listed.items[0].id == "blb-1"
        assert api.seen[-1].query == {"bucket_id": "bkt-1", "min_position": "42"}

        api.play(created(BLOB, 40))  # an older position never lowers it
        await ink.create_blob({"a": 1})
        api.play(Reply(200, BLOB))
        await ink.get_blob("blb-1")
        assert api.seen[-1].query == {"min_position": "42"} and ink.last_position == 42

        api.play(Reply(200, BLOB))
        await ink.get_blob("blb-1", consistency="eventual")
        assert api.seen[-1].query == {"consistency": "eventual"}

        api.play(Reply(200, BLOB))
        await ink.get_blob("blb-1", as_of=3, consistency="strong")
        assert api.seen[-1].query == {"as_of": "3", "consistency": "strong"}

        api.play(Reply(200, {"valid": True, "errors": []}))
        await ink.validate("s@1.0.0", {"a": 1})  # a POST: no query parameters, a key
        assert api.seen[-1].query == {} and api.seen[-1].key


async def test_register_stores_the_token_and_position(fake: tuple[FakeApi, str]) -> None:
    api, url = fake
    api.play(created({"user_id": "usr-1", "token": "new-token", "expires_at": "2030-01-01T00:00:00Z"}, 4))
    async with client(url, token=None) as ink:
        out = await ink.register("a@example.com", "password1", "a")
        assert out.token == "new-token" and ink.token == "new-token" and ink.last_position == 4
        assert "Authorization" not in api.seen[0].headers
        api.play(Reply(200, {"user_id": "usr-1", "email": "a@example.com", "username": "a",
                             "created_at": "2025-01-01T00:00:00Z"}))
        me = await ink.me()
    assert me.username == "a"
    assert api.seen[-1].headers["Authorization"] == "Bearer new-token"
    assert api.seen[-1].query == {"min_position": "4"}


# -- request shapes ------------------------------------------------------------------------------


async def test_update_bucket_tells_absent_parent_from_null(fake: tuple[FakeApi, str]) -> None:
    api, url = fake
    api.play(then=created(BUCKET, 1, status=200))
    async with client(url) as ink:
        await ink.update_bucket("bkt-1", name="n")
        await ink.update_bucket("bkt-1", parent_id=None)
        await ink.update_bucket("bkt-1", parent_id="bkt-0", name="m")
        await ink.update_bucket("bkt-1", parent_id=UNSET)
    bodies = [orjson.loads(s.body) for s in api.seen]
    assert bodies == [{"name": "n"}, {"parent_id": None}, {"name": "m", "parent_id": "bkt-0"}, {}]


async def test_iter_pages_follows_cursors(fake: tuple[FakeApi, str]) -> None:
    api, url = fake
    api.play(Reply(200, {"items": [{**BUCKET, "id": "b1"}, {**BUCKET, "id": "b2"}], "next_cursor": "c1"}),
             Reply(200, {"items": [{**BUCKET, "id": "b3"}], "next_cursor": None}))
    async with client(url) as ink:
        got = [b.id async for b in ink.iter_pages(ink.list_buckets, parent_id="p", limit=2)]
    assert got == ["b1", "b2", "b3"]
    assert [s.query for s in api.seen] == [{"parent_id": "p", "limit": "2"},
                                           {"parent_id": "p", "limit": "2", "cursor": "c1"}]


async def test_health_returns_unhealthy_without_retrying(fake: tuple[FakeApi, str]) -> None:
    api, url = fake
    api.play(Reply(503, {"status": "unhealthy", "version": "0.1.0", "checks": {"nats": {"status": "down"}}}))
    async with client(url) as ink:
        health = await ink.health()
    assert health.status == "unhealthy" and len(api.seen) == 1


async def test_export_returns_bytes(fake: tuple[FakeApi, str]) -> None:
    api, url = fake
    api.play(Reply(200, "My Book", {"Content-Type": "text/plain"}))
    async with client(url) as ink:
        data = await ink.export_book("bk-1", "text")
    assert data == orjson.dumps("My Book") and api.seen[0].query == {"format": "text"}
    assert api.seen[0].path == "/v1/books/bk-1/export"


async def test_a_given_session_is_used_and_left_open(fake: tuple[FakeApi, str]) -> None:
    api, url = fake
    api.play(Reply(200, {"status": "healthy", "version": "0.1.0", "checks": {}}))
    async with aiohttp.ClientSession() as session:
        async with InkstreamClient(url, session=session) as ink:
            await ink.health()
        assert not session.closed
