"""A thin HTTP client for the content tests: JSON in and out, 429s waited out.

One user issues hundreds of requests in some tests; the per-user rate limit
answers 429 with ``Retry-After``, which a well-behaved client honours.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import aiohttp
from multidict import CIMultiDictProxy

from tests.support.users import TestUser


@dataclass(frozen=True)
class Answer:
    status: int
    body: Any
    headers: CIMultiDictProxy[str]


async def call(
    http: aiohttp.ClientSession,
    method: str,
    path: str,
    user: TestUser | None = None,
    *,
    json: Any = None,
    params: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> Answer:
    all_headers = {**(user.headers if user else {}), **(headers or {})}
    kwargs: dict[str, Any] = {"headers": all_headers}
    if json is not None:
        kwargs["json"] = json
    if params is not None:
        kwargs["params"] = {k: str(v) for k, v in params.items()}
    for _ in range(50):
        async with http.request(method, path, **kwargs) as r:
            if r.status == 429:
                await asyncio.sleep(float(r.headers.get("Retry-After", "1")))
                continue
            text = await r.text()
            body = await r.json(content_type=None) if text else None
            return Answer(r.status, body, r.headers)
    raise AssertionError(f"{method} {path}: still rate limited")


async def ok(http: aiohttp.ClientSession, method: str, path: str, user: TestUser, status: int = 200, **kw: Any) -> Any:
    answer = await call(http, method, path, user, **kw)
    assert answer.status == status, (method, path, answer.status, answer.body)
    return answer.body


async def create_bucket(http: aiohttp.ClientSession, user: TestUser, name: str, type_: str = "folder",
                        parent_id: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"name": name, "type": type_}
    if parent_id is not None:
        body["parent_id"] = parent_id
    return await ok(http, "POST", "/v1/buckets", user, 201, json=body)


async def create_blob(http: aiohttp.ClientSession, user: TestUser, data: Any, **fields: Any) -> dict[str, Any]:
    return await ok(http, "POST", "/v1/blobs", user, 201, json={"data": data, **fields})


def problem(answer: Answer, status: int, code: str, phrase: str) -> dict[str, Any]:
    """Assert an RFC 9457 answer and return its body."""
    assert answer.status == status, (answer.status, answer.body)
    assert answer.headers["Content-Type"].startswith("application/problem+json")
    assert answer.body["code"] == code and answer.body["detail"].startswith(phrase), answer.body
    return answer.body
