"""Seed Task 2: register, log in, check the token (over real HTTP, real log, real database)."""

from __future__ import annotations

import uuid

import aiohttp


def email() -> str:
    return f"writer-{uuid.uuid4().hex[:10]}@example.com"


async def register(http: aiohttp.ClientSession, address: str | None = None, password: str = "correct horse") -> dict:
    async with http.post("/v1/auth/register", json={"email": address or email(), "password": password, "username": "writer"}) as r:
        assert r.status == 201, await r.text()
        return await r.json()


async def test_register_answers_a_token_and_the_log_position(http: aiohttp.ClientSession) -> None:
    async with http.post("/v1/auth/register", json={"email": email(), "password": "s3cret-pass", "username": "ada"}) as r:
        assert r.status == 201
        body = await r.json()
        assert int(r.headers["X-Position"]) == body["position"] > 0
    assert body["user_id"] and body["token"] and body["expires_at"].endswith("Z")


async def test_me_returns_the_registered_user_right_after_registration(http: aiohttp.ClientSession) -> None:
    address = email()
    reg = await register(http, address)
    async with http.get("/v1/auth/me", headers={"Authorization": f"Bearer {reg['token']}"}) as r:
        assert r.status == 200, await r.text()
        me = await r.json()
    assert me["user_id"] == reg["user_id"] and me["email"] == address and me["username"] == "writer"
    assert me["created_at"].endswith("Z")


async def test_login_with_the_right_password_gives_a_working_token(http: aiohttp.ClientSession) -> None:
    address = email()
    reg = await register(http, address, "pa55word!")
    async with http.post("/v1/auth/login", json={"email": address.upper(), "password": "pa55word!"}) as r:
        assert r.status == 200
        login = await r.json()
    assert login["user_id"] == reg["user_id"]
    async with http.get("/v1/auth/me", headers={"Authorization": f"Bearer {login['token']}"}) as r:
        assert r.status == 200


async def test_wrong_password_and_unknown_email_get_the_same_401(http: aiohttp.ClientSession) -> None:
    address = email()
    await register(http, address)
    async with http.post("/v1/auth/login", json={"email": address, "password": "wrong password"}) as r:
        wrong = (r.status, r.content_type, await r.json())
    async with http.post("/v1/auth/login", json={"email": email(), "password": "wrong password"}) as r:
        unknown = (r.status, r.content_type, await r.json())
    assert wrong[0] == unknown[0] == 401
    assert wrong[1] == "application/problem+json"
    assert wrong[2]["code"] == unknown[2]["code"] == "unauthorized"
    assert wrong[2]["detail"] == unknown[2]["detail"] and wrong[2]["detail"].startswith("unauthorized")


async def test_a_taken_email_is_a_409_and_changes_nothing(http: aiohttp.ClientSession) -> None:
    address = email()
    first = await register(http, address, "first-password")
    async with http.post("/v1/auth/register", json={"email": address.upper(), "password": "other-password", "username": "x"}) as r:
        assert r.status == 409
        body = await r.json()
        assert body["code"] == "conflict" and body["detail"].startswith("conflict")
    async with http.post("/v1/auth/login", json={"email": address, "password": "first-password"}) as r:
        assert r.status == 200 and (await r.json())["user_id"] == first["user_id"]


async def test_invalid_email_and_short_password_are_422_with_every_error(http: aiohttp.ClientSession) -> None:
    async with http.post("/v1/auth/register", json={"email": "not-an-email", "password": "short", "username": "x"}) as r:
        assert r.status == 422
        body = await r.json()
    assert body["code"] == "validation_failed" and body["detail"].startswith("validation failed")
    assert [e["path"] for e in body["errors"]] == ["/email", "/password"]


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
