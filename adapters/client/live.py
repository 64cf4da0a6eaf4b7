"""Live updates in the SDK: ``async for event in ink.subscribe(bucket_id=B)``.

The subscription is the log, seen from one bucket (or job): every change
after ``since`` (or after the moment of subscribing), in order, exactly once.
When the connection drops (a network failure, a server restart, or a close
4408 because this client read too slowly) it reconnects with a growing
backoff and resubscribes with ``since`` = the last position it delivered, so
nothing is missed; a push at or before that position is dropped, so nothing
is delivered twice. It ends when the bucket is deleted (``unsubscribed``),
and raises when the server refuses for good (a bad or expired token,
someone else's bucket, an unknown one).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, Protocol

import aiohttp
import orjson

from adapters.client.errors import BY_CODE, InkstreamError, RateLimitedError, UnauthorizedError

log = logging.getLogger("inkstream.client")

#: Close codes after which reconnecting cannot help.
FINAL_CLOSES = {4401: "unauthorized"}
RETRYABLE_CODES = {"unavailable", "internal"}


@dataclass(frozen=True)
class LiveEvent:
    """One push: ``type`` (``blob.created``, ``job.completed``...), its log ``position`` and its ``data``."""

    type: str
    position: int
    data: dict[str, Any]

    @property
    def blob(self) -> dict[str, Any] | None:
        """The blob as it is after the change (blob events)."""
        return self.data.get("blob")


class Connection(Protocol):
    """What a subscription uses of ``InkstreamClient``."""

    base_url: str
    token: str | None
    retry_rate_limited: bool

    def session(self) -> aiohttp.ClientSession: ...

    def backoff_delay(self, attempt: int, retry_after: float | None) -> float: ...


class _Reconnect(Exception):
    def __init__(self, wait: float | None = None) -> None:
        self.wait = wait


def error_from_message(data: dict[str, Any]) -> InkstreamError:
    """The SDK exception for an ``error`` message (the same codes as problem answers)."""
    code = str(data.get("code") or "error")
    cls = BY_CODE.get(code, InkstreamError)
    retry_after = data.get("retry_after")
    return cls(str(data.get("message") or code), code=code,
               retry_after=float(retry_after) if isinstance(retry_after, (int, float)) else None, body=data)


def ws_url(base_url: str) -> str:
    scheme, _, rest = base_url.partition("://")
    return f"{'wss' if scheme == 'https' else 'ws'}://{rest}/ws"


async def subscribe(
    client: Connection,
    *,
    bucket_id: str | None = None,
    job_id: str | None = None,
    since: int | None = None,
    migration_id: str | None = None,
    heartbeat: float = 20.0,
    max_reconnects: int | None = None,
) -> AsyncIterator[LiveEvent]:
    given = {k: v for k, v in (("bucket_id", bucket_id), ("job_id", job_id), ("migration_id", migration_id))
             if v is not None}
    if len(given) != 1:
        raise ValueError("give exactly one of bucket_id, job_id and migration_id")
    topic: dict[str, str | None] = dict(given)
    last = since
    failures = 0
    while True:
        wait: float | None = None
        try:
            async for event in _session(client, topic, last, heartbeat):
                if isinstance(event, int):  # subscribed: the position the live stream starts after
                    if last is None:
                        last = event
                    failures = 0
                    continue
                if last is not None and event.position <= last:
                    continue  # already delivered before a reconnect
                last = event.position
                yield event
            return  # the subscription ended (its bucket was deleted)
        except _Reconnect as again:
            wait = again.wait
        except (aiohttp.ClientConnectionError, aiohttp.WSServerHandshakeError, asyncio.TimeoutError) as exc:
            log.debug("inkstream.live.reconnect reason=%s", type(exc).__name__)
        failures += 1
        if max_reconnects is not None and failures > max_reconnects:
            raise InkstreamError("unavailable: the live connection failed too often", status=None,
                                 code="unavailable")
        await asyncio.sleep(client.backoff_delay(failures - 1, wait))


async def _session(client: Connection, topic: dict[str, str | None], since: int | None,
                   heartbeat: float) -> AsyncIterator[LiveEvent | int]:
    """One connection: the ``subscribed`` position, then pushes; raises ``_Reconnect`` when it drops."""
    session = client.session()
    async with session.ws_connect(ws_url(client.base_url), heartbeat=heartbeat,
                                  timeout=aiohttp.ClientWSTimeout(ws_close=5)) as ws:
        await ws.send_str(orjson.dumps({"type": "auth", "data": {"token": client.token}}).decode())
        subscribe: dict[str, Any] = dict(topic)
        if since is not None:
            subscribe["since"] = since
        async for frame in ws:
            if frame.type != aiohttp.WSMsgType.TEXT:
                break
            message = orjson.loads(frame.data)
            kind, data = message.get("type"), message.get("data") or {}
            if kind == "auth.ok":
                await ws.send_str(orjson.dumps({"type": "subscribe", "data": subscribe}).decode())
            elif kind == "subscribed":
                yield int(data["position"])
            elif kind == "error":
                error = error_from_message(data)
                if isinstance(error, RateLimitedError) and client.retry_rate_limited:
                    raise _Reconnect(error.retry_after)
                if error.code in RETRYABLE_CODES:
                    raise _Reconnect()
                raise error
            elif kind == "unsubscribed":
                return
            elif isinstance(kind, str) and "." in kind and kind != "auth.ok":
                yield LiveEvent(kind, int(data["position"]), data)
        code = ws.close_code
    if code in FINAL_CLOSES:
        raise UnauthorizedError(f"unauthorized: the live connection was closed ({code})", code="unauthorized")
    raise _Reconnect()
