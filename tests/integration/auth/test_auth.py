"""Seed Task 2: register, log in, check the token (real HTTP, real log, real database).

The flows go through the SDK as a user would; the tests of the wire itself
(X-Position, problem+json, malformed and oversized bodies, Idempotency-Key)
speak raw HTTP.
"""

from __future__ import annotations

from datetime import timedelta
import uuid

import aiohttp

from adapters.client import ConflictError, InkstreamClient, UnauthorizedError, ValidationFailedError
from tests.support.sdk import fails
from tests.support.system import RunningSystem


def email() -> str:
    return f"writer-{uuid.uuid4().hex[:10]}@example.com"


def client(system: RunningSystem, http: aiohttp.ClientSession) -> InkstreamClient:
    return InkstreamClient(system.base_url, session=http, backoff=0.05)


async def test_register_answers_a_token_and_the_log_position(http: aiohttp.ClientSession) -> None:
    async with http.post("/v1/auth/register", json={"email": email(), "password": "s3cret-pass", "username": "ada"}) as r:
        assert r.status == 201
        body = await r.json()
        assert int(r.headers["X-Position"]) == body["position"] > 0
    assert body["user_id"] and body["token"] and body["expires_at"].endswith("Z")


async def test_me_returns_the_registered_user_right_after_registration(system: RunningSystem,
                                                                      http: aiohttp.ClientSession) -> None:
    address = email()
    ink = client(system, http)
    reg = await ink.register(address, "correct horse", "writer")
    assert ink.token == reg.token and ink.user_id == reg.user_id
    me = await ink.me()
    assert me.user_id == reg.user_id and me.email == address and me.username == "writer"
    assert me.created_at.utcoffset() == timedelta(0)  # RFC 3339 UTC on the wire


async def test_login_with_the_right_password_gives_a_working_token(system: RunningSystem,
                                                                   http: aiohttp.ClientSession) -> None:
    address = email()
    reg = await client(system, http).register(address, "pa55word!", "writer")
    ink = client(system, http)
    login = await ink.login(address.upper(), "pa55word!")
    assert login.user_id == reg.user_id and ink.token == login.token
    assert (await ink.me()).user_id == reg.user_id


async def test_wrong_password_and_unknown_email_get_the_same_401(system: RunningSystem,
                                                                 http: aiohttp.ClientSession) -> None:
    address = email()
    await client(system, http).register(address, "correct horse", "writer")
    with fails(UnauthorizedError) as wrong:
        await client(system, http).login(address, "wrong password")
    with fails(UnauthorizedError) as unknown:
        await client(system, http).login(email(), "wrong password")
    assert wrong.value.detail == unknown.value.detail
    # On the wire: the same problem+json answer either way.
    async with http.post("/v1/auth/login", json={"email": address, "password": "wrong password"}) as r:
        assert (r.status, r.content_type) == (401, "application/problem+json")
        assert (await r.json())["detail"] == wrong.value.detail


async def test_a_taken_email_is_a_409_and_changes_nothing(system: RunningSystem,
                                                               http: aiohttp.ClientSession) -> None:
    address = email()
    first = await client(system, http).register(address, "first-password", "writer")
    with fails(ConflictError):
        await client(system, http).register(address.upper(), "other-password", "x")
    assert (await client(system, http).login(address, "first-password")).user_id == first.user_id


async def test_invalid_email_and_short_password_are_422_with_every_error(
    system: RunningSystem, http: aiohttp.ClientSession
) -> None:
    ink = client(system, http)
    with fails(ValidationFailedError) as caught:
        await ink.register("not-an-email", "short", "x")
    assert [e["path"] for e in caught.value.errors] == ["/email", "/password"]
    assert ink.token is None


async def test_malformed_json_unknown_fields_and_wrong_types_are_400(http: aiohttp.ClientSession) -> None:
    async with http.post("/v1/auth/register", data=b"{not json", headers={"Content-Type": "application/json"}) as r:
        assert r.status == 400 and (await r.json())["code"] == "bad_request"
    async with http.post("/v1/auth/register", json={"email": email(), "password": "longenough", "username": "x", "admin": True}) as r:
        body = await r.json()
        assert r.status == 400 and body["detail"].startswith("bad request")
        assert {"path": "/admin", "message": "admin is not allowed"} in body["errors"]
    async with http.post("/v1/auth/register", json={"email": email(), "password": 12345678, "username": "x"}) as r:
        assert r.status == 400


async def test_an_oversized_body_is_413(http: aiohttp.ClientSession) -> None:
    async with http.post("/v1/auth/register", json={"email": email(), "password": "x" * (2 * 1024 * 1024), "username": "x"}) as r:
        assert r.status == 413
        assert (await r.json())["code"] == "payload_too_large"


async def test_the_same_idempotency_key_registers_once(http: aiohttp.ClientSession) -> None:
    payload = {"email": email(), "password": "idempotent", "username": "once"}
    headers = {"Idempotency-Key": uuid.uuid4().hex}
    async with http.post("/v1/auth/register", json=payload, headers=headers) as r:
        first = await r.json()
        assert r.status == 201
    async with http.post("/v1/auth/register", json=payload, headers=headers) as r:
        again = await r.json()
        assert r.status == 201, again
    assert again["user_id"] == first["user_id"] and again["position"] == first["position"]
