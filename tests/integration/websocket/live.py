"""A raw WebSocket client of ``/ws`` for the tests: JSON messages, strict order, bounded waits."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import orjson


class Live:
    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws

    @classmethod
    async def open(cls, session: aiohttp.ClientSession, base_url: str, token: str | None = None,
                   **options: Any) -> Live:
        """Connected, and authenticated when ``token`` is given."""
        live = cls(await session.ws_connect(base_url + "/ws", **options))
        if token is not None:
            await live.send("auth", token=token)
            ok = await live.next()
            assert ok["type"] == "auth.ok", ok
        return live

    async def send(self, type: str, **data: Any) -> None:  # noqa: A002
        await self.ws.send_str(orjson.dumps({"type": type, "data": data}).decode())

    async def next(self, timeout: float = 10) -> dict[str, Any]:
        """The next message; fails on a close or after ``timeout`` s."""
        async with asyncio.timeout(timeout):
            frame = await self.ws.receive()
        assert frame.type == aiohttp.WSMsgType.TEXT, (frame.type, frame.data, frame.extra)
        return orjson.loads(frame.data)

    async def closed(self, timeout: float = 10) -> tuple[int | None, list[dict[str, Any]]]:
        """Read until the server closes: (close code, the messages before it)."""
        seen: list[dict[str, Any]] = []
        async with asyncio.timeout(timeout):
            while True:
                frame = await self.ws.receive()
                if frame.type == aiohttp.WSMsgType.TEXT:
                    seen.append(orjson.loads(frame.data))
                    continue
                if frame.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSING, aiohttp.WSMsgType.CLOSED,
                                  aiohttp.WSMsgType.ERROR):
                    return self.ws.close_code, seen

    async def subscribe(self, since: int | None = None, **topic: str) -> dict[str, Any]:
        """``subscribed``'s data."""
        data: dict[str, Any] = dict(topic)
        if since is not None:
            data["since"] = since
        await self.send("subscribe", **data)
        answer = await self.next()
        assert answer["type"] == "subscribed", answer
        return answer["data"]

    async def take(self, n: int, timeout: float = 15) -> list[dict[str, Any]]:
        return [await self.next(timeout) for _ in range(n)]

    async def silent(self, seconds: float) -> None:
        """Nothing arrives for ``seconds``."""
        try:
            async with asyncio.timeout(seconds):
                frame = await self.ws.receive()
        except TimeoutError:
            return
        raise AssertionError(f"expected nothing, got {frame.type} {frame.data!r}")

    async def close(self) -> None:
        await self.ws.close()
