"""A local HTTP server that speaks the OpenAI chat-completions wire format, scripted per test."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.support.system import free_port

Reply = Callable[[dict[str, Any]], Awaitable[web.StreamResponse]]


def completion(content: Any) -> dict[str, Any]:
    return {
        "id": "chatcmpl-test", "object": "chat.completion", "created": 0, "model": "test-model",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
    }  # fmt: skip


async def answer(content: Any) -> web.Response:
    return web.json_response(completion(content))


@dataclass
class ChatServer:
    """``script`` answers each request in turn (the last one repeats)."""

    script: list[Reply] = field(default_factory=list)
    requests: list[dict[str, Any]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    arrived: list[float] = field(default_factory=list)
    disconnected: int = 0
    url: str = ""
    _runner: web.AppRunner | None = None

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self.requests.append(body)
        self.headers.append(dict(request.headers))
        self.arrived.append(asyncio.get_running_loop().time())
        reply = self.script[min(len(self.requests) - 1, len(self.script) - 1)]
        try:
            return await reply(body)
        except asyncio.CancelledError:
            self.disconnected += 1  # the client closed the connection while we were answering
            raise

    async def start(self) -> str:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._handle)
        self._runner = web.AppRunner(app, handler_cancellation=True)
        await self._runner.setup()
        port = free_port()
        await web.TCPSite(self._runner, "127.0.0.1", port).start()
        self.url = f"http://127.0.0.1:{port}"
        return self.url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


def status(code: int, text: str = "", headers: dict[str, str] | None = None) -> Reply:
    async def reply(_: dict[str, Any]) -> web.Response:
        return web.Response(status=code, text=text or f"status {code}", headers=headers)

    return reply


def raw(text: str, code: int = 200) -> Reply:
    async def reply(_: dict[str, Any]) -> web.Response:
        return web.Response(status=code, text=text, content_type="application/json")

    return reply


def content(text: Any) -> Reply:
    async def reply(_: dict[str, Any]) -> web.Response:
        return await answer(text)

    return reply


def slow(seconds: float, text: str = "late") -> Reply:
    async def reply(_: dict[str, Any]) -> web.Response:
        await asyncio.sleep(seconds)
        return await answer(text)

    return reply
