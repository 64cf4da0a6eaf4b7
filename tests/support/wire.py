"""Raw HTTP for the assertions that are about the wire itself: statuses, headers, problem bodies."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import aiohttp
from multidict import CIMultiDictProxy

from adapters.client import InkstreamClient


@dataclass(frozen=True)
class Answer:
    status: int
    body: Any
    headers: CIMultiDictProxy[str]


def bearer(ink: InkstreamClient) -> dict[str, str]:
    """The ``Authorization`` header of an SDK client's user."""
    assert ink.token, "the client has no token"
    return {"Authorization": f"Bearer {ink.token}"}


async def call(
    http: aiohttp.ClientSession,
    method: str,
    path: str,
    user: InkstreamClient | None = None,
    *,
    json: Any = None,
    params: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> Answer:
    """One request as sent (no ``min_position``, no retries but of 429s, which it waits out): status, body, headers."""
    kwargs: dict[str, Any] = {"headers": {**(bearer(user) if user else {}), **(headers or {})}}
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


def problem(answer: Answer, status: int, code: str, phrase: str) -> dict[str, Any]:
    """Assert an RFC 9457 answer and return its body."""
    assert answer.status == status, (answer.status, answer.body)
    assert answer.headers["Content-Type"].startswith("application/problem+json")
    assert answer.body["code"] == code and answer.body["detail"].startswith(phrase), answer.body
    return answer.body
