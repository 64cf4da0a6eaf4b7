"""Registering test users over HTTP."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import aiohttp


@dataclass(frozen=True)
class TestUser:
    __test__ = False  # a helper, not a test class
    user_id: str
    email: str
    password: str
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


async def new_user(http: aiohttp.ClientSession, prefix: str = "user") -> TestUser:
    email = f"{prefix}-{uuid.uuid4().hex[:12]}@example.com"
    password = "pw-" + uuid.uuid4().hex[:12]
    async with http.post("/v1/auth/register", json={"email": email, "password": password, "username": prefix}) as r:
        body = await r.json()
        assert r.status == 201, body
    return TestUser(body["user_id"], email, password, body["token"])
