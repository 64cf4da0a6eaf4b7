"""Seed Task 10 and the token attacks of the HTTP issue: every bad token is a 401."""

from __future__ import annotations

import base64
import time
import uuid

import aiohttp
import jwt
import orjson
import pytest

from adapters.http.tokens import TokenService
from tests.support.system import TEST_SECRET
from tests.support.users import new_user


def b64(data: dict) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(data)).rstrip(b"=").decode()


async def status_and_code(http: aiohttp.ClientSession, token: str | None, raw_header: str | None = None) -> tuple[int, str]:
    headers = {}
    if raw_header is not None:
        headers["Authorization"] = raw_header
    elif token is not None:
        headers["Authorization"] = f"Bearer {token}"
    async with http.get("/v1/auth/me", headers=headers) as r:
        body = await r.json()
        assert r.content_type == "application/problem+json" or r.status == 200
        return r.status, body.get("code", "")


async def test_no_token_is_401_unauthorized(http: aiohttp.ClientSession) -> None:
    assert await status_and_code(http, None) == (401, "unauthorized")


async def test_an_expired_token_is_401_token_expired(http: aiohttp.ClientSession) -> None:
    user = await new_user(http)
    expired = TokenService(TEST_SECRET, lifetime_seconds=60).issue(user.user_id, now=time.time() - 3600).token
    assert await status_and_code(http, expired) == (401, "token_expired")


def claims(sub: str, **extra: object) -> dict:
    now = int(time.time())
    return {"sub": sub, "iat": now, "exp": now + 600, "jti": str(uuid.uuid4()), **extra}


@pytest.mark.parametrize(
    "attack",
    ["alg_none", "other_secret", "tampered_payload", "missing_sub", "garbage", "hs512", "not_bearer", "empty_bearer"],
)
async def test_forged_or_malformed_tokens_are_401(http: aiohttp.ClientSession, attack: str) -> None:
    user = await new_user(http)
    good = TokenService(TEST_SECRET).issue(user.user_id).token
    raw_header = None
    token: str | None
    if attack == "alg_none":
        token = f"{b64({'alg': 'none', 'typ': 'JWT'})}.{b64(claims(user.user_id))}."
    elif attack == "other_secret":
        token = jwt.encode(claims(user.user_id), "another-secret-" + "y" * 40, algorithm="HS256")
    elif attack == "tampered_payload":
        header, _, signature = good.split(".")
        token = f"{header}.{b64(claims(str(uuid.uuid4())))}.{signature}"
    elif attack == "missing_sub":
        c = claims(user.user_id)
        del c["sub"]
        token = jwt.encode(c, TEST_SECRET, algorithm="HS256")
    elif attack == "garbage":
        token = "definitely.not.a-jwt"
    elif attack == "hs512":
        token = jwt.encode(claims(user.user_id), TEST_SECRET, algorithm="HS512")
    elif attack == "not_bearer":
        token, raw_header = None, f"Basic {good}"
    else:
        token, raw_header = None, "Bearer "
    assert await status_and_code(http, token, raw_header) == (401, "unauthorized")
    # and the genuine token still works
    assert (await status_and_code(http, good))[0] == 200


async def test_a_body_user_id_that_is_not_the_tokens_subject_is_403(http: aiohttp.ClientSession) -> None:
    user = await new_user(http)
    async with http.post(
        "/v1/auth/register",
        json={"email": f"x-{uuid.uuid4().hex[:6]}@example.com", "password": "long enough", "username": "x",
              "user_id": str(uuid.uuid4())},
        headers=user.headers,
    ) as r:
        body = await r.json()
    assert r.status == 403 and body["code"] == "forbidden" and body["detail"].startswith("forbidden")
